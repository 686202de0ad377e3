import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ConversationsStore } from '../../src/agents/conversations-store.js';
import { FencedError } from '../../src/db/fence.js';
import { ApiError } from '../../src/errors.js';
import type { StoreEngine } from '../helpers/store-engines.js';

const conv = (nft: string, at = 1_764_000_000_000) => ({ id: randomUUID(), nft_token_id: nft, wallet: '0xabc', created_at: at, updated_at: at });

/** The ConversationsStore contract: the same behaviour on every engine. */
export function conversationsContract(engine: () => Promise<StoreEngine<ConversationsStore>>): void {
  test('a conversation is visible at once; its messages read back in order after commit, from a second connection', async () => {
    const e = await engine();
    try {
      const s = e.store;
      const c = conv('c1');
      s.create(c);
      assert.equal((await s.get(c.id))!.id, c.id);
      await Promise.all([
        s.appendCommitted(c.id, 'system', 'earlier', 2, false, c.created_at),
        s.appendCommitted(c.id, 'user', 'hello', 1, false, c.created_at + 1),
      ]);
      await s.appendCommitted(c.id, 'assistant', 'hi there', 3, true, c.created_at + 5);
      for (const store of [s, e.second()]) {
        assert.equal((await store.owned(c.id, 'c1', '0xABC')).updated_at, c.created_at + 5);
        await assert.rejects(store.owned(c.id, 'other', '0xabc'), (err) => err instanceof ApiError && err.code === 'NOT_FOUND');
        const page = await store.page(c.id, 10, 0);
        assert.equal(page.total, 3);
        assert.deepEqual(page.messages.map((m) => [m.role, m.content, m.tokens, m.incomplete]), [['system', 'earlier', 2, 0], ['user', 'hello', 1, 0], ['assistant', 'hi there', 3, 1]]);
        assert.deepEqual(Object.keys(page.messages[0]!).sort(), ['content', 'conversation_id', 'created_at', 'id', 'incomplete', 'role', 'tokens']);
        assert.deepEqual((await store.page(c.id, 1, 1)).messages.map((m) => m.content), ['hello']);
        assert.deepEqual(await store.context(c.id, 4), [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi there' }]);
        assert.equal(await store.contextTokens(c.id, 4), 4);
        const list = await store.list('c1', '0xabc', 10, 0);
        assert.equal(list.total, 1);
        assert.deepEqual(list.rows.map((r) => [r.id, r.messages, r.title]), [[c.id, 3, 'hello']]);
      }
      assert.equal(await s.clear(c.id), 3);
      assert.equal((await e.second().page(c.id, 10, 0)).total, 0);
    } finally {
      await e.close();
    }
  });

  test('many conversations written in one turn commit together; each keeps its own order', async () => {
    const e = await engine();
    try {
      const s = e.store;
      const cs = Array.from({ length: 20 }, (_, i) => conv('c2', 1_764_000_000_000 + i));
      const writes: Promise<void>[] = [];
      for (const c of cs) {
        s.create(c);
        for (let k = 0; k < 3; k++) writes.push(s.appendCommitted(c.id, k % 2 ? 'assistant' : 'user', `${c.id}:${k}`, 1, false, c.created_at + k));
      }
      await Promise.all(writes);
      const other = e.second();
      for (const c of cs) assert.deepEqual((await other.page(c.id, 10, 0)).messages.map((m) => m.content), [0, 1, 2].map((k) => `${c.id}:${k}`));
      assert.equal((await other.list('c2', '0xabc', 100, 0)).total, 20);
    } finally {
      await e.close();
    }
  });

  test('fenced writes are refused once the lease moved, and nothing is written', async (t) => {
    const e = await engine();
    try {
      if (!e.fenceFor || !e.moveLease) {
        t.skip('one process is the only writer: fences are ignored');
        return;
      }
      const s = e.store;
      const fence = await e.fenceFor('c3');
      const c = conv('c3');
      s.create(c, fence);
      await s.appendCommitted(c.id, 'user', 'one', 1, false, c.created_at, fence);
      await e.moveLease('c3');
      await assert.rejects(s.appendCommitted(c.id, 'assistant', 'late', 1, false, c.created_at + 1, fence), FencedError);
      await assert.rejects(s.clear(c.id, fence), FencedError);
      const c2 = conv('c3');
      s.create(c2, fence);
      await assert.rejects(s.appendCommitted(c2.id, 'user', 'x', 1, false, c2.created_at, fence), FencedError);
      const other = e.second();
      assert.deepEqual((await other.page(c.id, 10, 0)).messages.map((m) => m.content), ['one']);
      assert.equal(await other.get(c2.id), undefined);
      assert.equal(await s.get(c2.id), undefined);
    } finally {
      await e.close();
    }
  });

  test('a turn id reads back its message and its reply; the same turn cannot store a second of either', async () => {
    const e = await engine();
    try {
      const s = e.store;
      const fence = await e.fenceFor?.('c4');
      const c = conv('c4');
      s.create(c, fence);
      const turn = `tag:${randomUUID()}`;
      assert.deepEqual(await s.turnRecord(turn), { user: false });
      await Promise.all([
        s.appendCommitted(c.id, 'system', 'a prelude', 1, false, c.created_at, fence),
        s.appendCommitted(c.id, 'user', 'hello', 1, false, c.created_at, fence, turn),
      ]);
      assert.deepEqual(await e.second().turnRecord(turn), { user: true });
      await s.appendCommitted(c.id, 'assistant', 'partial', 2, true, c.created_at + 5, fence, turn);
      assert.deepEqual(await e.second().turnRecord(turn), { user: true, reply: { content: 'partial', tokens: 2, incomplete: true, created_at: c.created_at + 5 } });
      await assert.rejects(s.appendCommitted(c.id, 'user', 'hello', 1, false, c.created_at + 6, fence, turn));
      await assert.rejects(s.appendCommitted(c.id, 'assistant', 'again', 1, false, c.created_at + 7, fence, turn));
      assert.deepEqual((await e.second().page(c.id, 10, 0)).messages.map((m) => m.content), ['a prelude', 'hello', 'partial'], 'nothing stored twice');
    } finally {
      await e.close();
    }
  });
}
