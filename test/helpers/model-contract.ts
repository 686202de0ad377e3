import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ChatMessage, ModelBackend, ModelEvent } from '../../src/models/model-backend.js';

/** One backend under test, built by the suite that runs the contract. */
export interface ContractSubject {
  backend: ModelBackend;
  /** the full reply the backend gives to these messages */
  expectedReply(messages: ChatMessage[]): string;
  /** the usage it reports for them, when that is known exactly */
  expectedUsage?(messages: ChatMessage[]): { promptTokens: number; completionTokens: number };
  close?(): Promise<void>;
}

export interface SubjectOptions {
  /** pause between tokens, so that a test can act in the middle of a stream */
  tokenDelayMs: number;
}

export type MakeSubject = (opts: SubjectOptions) => Promise<ContractSubject> | ContractSubject;

export const ONE_TURN: ChatMessage[] = [{ role: 'user', content: 'Hello panther, how are you today?' }];
export const THREE_TURNS: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful panther.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello! How can I help?' },
  { role: 'user', content: 'Tell me about Secret Network.' },
  { role: 'assistant', content: 'It is a privacy-preserving blockchain.' },
  { role: 'user', content: 'And what about NFTs with ünïcödé 🐆 names' },
];

export interface Collected {
  events: ModelEvent[];
  deltas: string[];
  text: string;
  usage: Extract<ModelEvent, { type: 'usage' }>[];
}

/** Drains a stream; `onDelta` runs after each delta (to abort, or stop by returning 'stop'). */
export async function collect(
  stream: AsyncIterable<ModelEvent>,
  onDelta?: (index: number) => void | 'stop' | Promise<void | 'stop'>,
): Promise<Collected> {
  const events: ModelEvent[] = [];
  let deltas = 0;
  for await (const e of stream) {
    events.push(e);
    if (e.type === 'delta' && onDelta && (await onDelta(deltas++)) === 'stop') break;
  }
  const ds = events.flatMap((e) => (e.type === 'delta' ? [e.content] : []));
  return {
    events,
    deltas: ds,
    text: ds.join(''),
    usage: events.filter((e): e is Extract<ModelEvent, { type: 'usage' }> => e.type === 'usage'),
  };
}

/**
 * The behaviour every ModelBackend promises (src/models/model-backend.ts). Each backend's
 * test runs this with a function that builds it (a real backend against a fake server).
 */
export function modelContract(name: string, make: MakeSubject): void {
  describe(`ModelBackend contract: ${name}`, () => {
    const built: ContractSubject[] = [];
    const subject = async (tokenDelayMs = 0): Promise<ContractSubject> => {
      const s = await make({ tokenDelayMs });
      built.push(s);
      return s;
    };
    after(async () => {
      for (const s of built) await s.close?.();
    });

    it('streams several deltas that join to the whole reply, then exactly one usage event', async () => {
      const s = await subject();
      for (const messages of [ONE_TURN, THREE_TURNS]) {
        const got = await collect(s.backend.stream({ messages, signal: new AbortController().signal }));
        assert.equal(got.text, s.expectedReply(messages));
        assert.ok(got.deltas.length > 1, `expected a stream of chunks, got ${got.deltas.length}`);
        for (const d of got.deltas) assert.ok(typeof d === 'string' && d.length > 0, 'empty delta');
        assert.equal(got.usage.length, 1, 'one usage event');
        assert.equal(got.events.at(-1)?.type, 'usage', 'usage comes last');
        const u = got.usage[0];
        assert.ok(Number.isInteger(u.promptTokens) && u.promptTokens > 0, `promptTokens ${u.promptTokens}`);
        assert.ok(Number.isInteger(u.completionTokens) && u.completionTokens > 0, `completionTokens ${u.completionTokens}`);
        if (s.expectedUsage) assert.deepEqual({ promptTokens: u.promptTokens, completionTokens: u.completionTokens }, s.expectedUsage(messages));
      }
    });

    it('has a name and a default model', async () => {
      const s = await subject();
      assert.ok(['scripted', 'openai', 'ollama', 'llama'].includes(s.backend.name));
      assert.ok(s.backend.defaultModel.length > 0);
    });

    it('answers the same conversation the same way (deterministic)', async () => {
      const s = await subject();
      const a = await collect(s.backend.stream({ messages: THREE_TURNS, signal: new AbortController().signal }));
      const b = await collect(s.backend.stream({ messages: THREE_TURNS, signal: new AbortController().signal }));
      assert.deepEqual(b.events, a.events);
    });

    it('keeps concurrent streams apart', async () => {
      const s = await subject(2);
      const [a, b] = await Promise.all([
        collect(s.backend.stream({ messages: ONE_TURN, signal: new AbortController().signal })),
        collect(s.backend.stream({ messages: THREE_TURNS, signal: new AbortController().signal })),
      ]);
      assert.equal(a.text, s.expectedReply(ONE_TURN));
      assert.equal(b.text, s.expectedReply(THREE_TURNS));
    });

    it('stops promptly, without an error and without usage, when the signal aborts mid-stream', async () => {
      const s = await subject(25);
      const full = s.expectedReply(THREE_TURNS);
      const ac = new AbortController();
      let abortedAt = 0;
      const got = await collect(s.backend.stream({ messages: THREE_TURNS, signal: ac.signal }), (i) => {
        if (i === 1) {
          abortedAt = performance.now();
          ac.abort();
        }
      });
      const tookMs = performance.now() - abortedAt;
      assert.ok(abortedAt > 0, 'the stream reached its second delta');
      assert.ok(tookMs < 500, `iteration ended ${tookMs.toFixed(0)} ms after the abort`);
      assert.ok(got.deltas.length >= 2 && got.deltas.length <= 3, `deltas after abort: ${got.deltas.length}`);
      assert.ok(got.text.length < full.length, 'the reply was cut short');
      assert.ok(full.startsWith(got.text), 'what arrived is the start of the reply');
      assert.equal(got.usage.length, 0, 'no usage for an aborted turn');
    });

    it('yields nothing when the signal is already aborted', async () => {
      const s = await subject();
      const ac = new AbortController();
      ac.abort();
      const got = await collect(s.backend.stream({ messages: ONE_TURN, signal: ac.signal }));
      assert.deepEqual(got.events, []);
    });

    it('stays usable after a consumer stops reading early', async () => {
      const s = await subject(5);
      const first = await collect(s.backend.stream({ messages: THREE_TURNS, signal: new AbortController().signal }), () => 'stop');
      assert.equal(first.deltas.length, 1);
      const again = await collect(s.backend.stream({ messages: ONE_TURN, signal: new AbortController().signal }));
      assert.equal(again.text, s.expectedReply(ONE_TURN));
      assert.equal(again.usage.length, 1);
    });
  });
}
