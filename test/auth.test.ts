import test from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { Wallet, verifyMessage } from 'ethers';
import { startServer, tempDir, type TestServer } from './helpers/server.js';
import { assignNft, newCosmosWallet, newEvmWallet, signIn } from './helpers/wallets.js';

/** A clock the tests move forward (challenge expiry, token expiry). */
let clock = Date.now();
const now = () => clock;
let server: TestServer;
let nftSeq = 100;
const nextNft = () => String(nftSeq++);

test.before(async () => {
  server = await startServer({}, { now });
});
test.after(async () => {
  await server?.stop();
});

async function challenge(wallet: string, nft: string) {
  return server.request('POST', '/v1/auth/challenge', { body: { wallet_address: wallet, nft_token_id: nft } });
}

async function verify(body: Record<string, unknown>) {
  return server.request('POST', '/v1/auth/verify', { body });
}

test('EVM sign-in: SIWE message for our domain, tokens, session, JWKS-verifiable JWT', async () => {
  const w = newEvmWallet();
  const nft = nextNft();
  assignNft(server, nft, w.address.toLowerCase()); // registry spelling differs in case: still the owner
  const ch = await challenge(w.address.toLowerCase(), nft);
  assert.equal(ch.status, 200, ch.text);
  const host = new URL(server.app.ctx.config.publicUrl).host;
  assert.match(host, /:\d+$/, 'the domain names the port');
  const lines = ch.body.message.split('\n');
  assert.equal(lines[0], `${host} wants you to sign in with your Ethereum account:`);
  assert.equal(lines[1], w.address, 'EIP-55 checksummed address');
  assert.match(lines[3], new RegExp(`NFT #${nft}\\b`));
  assert.ok(lines.includes(`Nonce: ${ch.body.nonce}`));
  assert.ok(lines.includes('Chain ID: 1'));
  assert.ok(lines.includes(`URI: ${new URL(server.app.ctx.config.publicUrl).origin}`));
  assert.match(ch.body.nonce, /^[A-Za-z0-9]{16,}$/);
  assert.equal(Date.parse(ch.body.expires_at) - Math.floor(clock / 1000) * 1000 <= 5 * 60_000, true);
  assert.ok(lines.includes(`Expiration Time: ${ch.body.expires_at}`));

  const signature = await w.sign(ch.body.message);
  assert.equal(verifyMessage(ch.body.message, signature), w.address);
  const vr = await verify({ wallet_address: w.address, nft_token_id: nft, signature, message: ch.body.message });
  assert.equal(vr.status, 200, vr.text);
  assert.equal(vr.body.expires_in, 3600);
  assert.match(vr.body.refresh_token, /^[A-Za-z0-9_-]{43}$/);
  assert.match(vr.body.session_id, /^[0-9a-f-]{36}$/);

  const jwks = await server.request('GET', '/.well-known/jwks.json');
  assert.equal(jwks.status, 200);
  assert.equal(jwks.body.keys[0].d, undefined, 'no private part');
  const { payload, protectedHeader } = await jose.jwtVerify(vr.body.access_token, jose.createLocalJWKSet(jwks.body), { currentDate: new Date(clock) });
  assert.equal(protectedHeader.alg, 'EdDSA');
  assert.equal(payload.sub, w.address);
  assert.equal(payload.nft, nft);
  assert.equal(payload.sid, vr.body.session_id);
  assert.equal(payload.exp! - payload.iat!, 3600);

  const s = await server.request('GET', '/v1/auth/session', { token: vr.body.access_token });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.body.wallet_address, w.address);
  assert.equal(s.body.nft_token_id, nft);
  assert.equal(s.body.session_id, vr.body.session_id);
  assert.ok(Date.parse(s.body.expires_at) > clock + 6 * 24 * 3600_000, 'refresh window of 7 days');

  // Nothing secret reaches the logs.
  const logs = server.logs.text;
  for (const secret of [vr.body.access_token, vr.body.refresh_token, signature]) assert.equal(logs.includes(secret), false);
});

test('Cosmos (secret1) sign-in with ADR-036, with and without public_key', async () => {
  for (const withKey of [true, false]) {
    const w = newCosmosWallet();
    const nft = nextNft();
    assignNft(server, nft, w.address);
    const ch = await challenge(w.address, nft);
    assert.equal(ch.status, 200, ch.text);
    assert.match(ch.body.message, /wants you to sign in with your Cosmos account:\nsecret1/);
    assert.ok(ch.body.message.includes(`NFT #${nft}`));
    const signed = w.sign(ch.body.message);
    const vr = await verify({
      wallet_address: w.address, nft_token_id: nft, signature: signed.signature, message: ch.body.message,
      ...(withKey ? { public_key: signed.pub_key.value } : {}),
    });
    assert.equal(vr.status, 200, vr.text);
    const s = await server.request('GET', '/v1/auth/session', { token: vr.body.access_token });
    assert.equal(s.body.wallet_address, w.address);
  }
  // Someone else's key for this wallet: refused.
  const w = newCosmosWallet();
  const thief = newCosmosWallet();
  const nft = nextNft();
  assignNft(server, nft, w.address);
  const ch = await challenge(w.address, nft);
  const forged = thief.sign(ch.body.message);
  const vr = await verify({ wallet_address: w.address, nft_token_id: nft, signature: forged.signature, message: ch.body.message, public_key: forged.pub_key.value });
  assert.equal(vr.status, 401);
  assert.equal(vr.body.error.code, 'INVALID_SIGNATURE');
});

test('wrong signer is refused, and the attempt burns the nonce', async () => {
  const w = newEvmWallet();
  const nft = nextNft();
  assignNft(server, nft, w.address);
  const ch = await challenge(w.address, nft);
  const bad = await verify({ wallet_address: w.address, nft_token_id: nft, signature: await Wallet.createRandom().signMessage(ch.body.message), message: ch.body.message });
  assert.equal(bad.status, 401);
  assert.equal(bad.body.error.code, 'INVALID_SIGNATURE');
  const good = await verify({ wallet_address: w.address, nft_token_id: nft, signature: await w.sign(ch.body.message), message: ch.body.message });
  assert.equal(good.status, 401, 'a failed attempt used the nonce up');
  assert.equal(good.body.error.code, 'INVALID_SIGNATURE');
});

test('tampered message, replayed nonce, message for another NFT: INVALID_SIGNATURE', async () => {
  const w = newEvmWallet();
  const nft = nextNft();
  const nft2 = nextNft();
  assignNft(server, nft, w.address);
  assignNft(server, nft2, w.address);

  const ch1 = await challenge(w.address, nft);
  const tampered = ch1.body.message.replace('Chain ID: 1', 'Chain ID: 5');
  const r1 = await verify({ wallet_address: w.address, nft_token_id: nft, signature: await w.sign(tampered), message: tampered });
  assert.equal(r1.status, 401);
  assert.equal(r1.body.error.code, 'INVALID_SIGNATURE');

  const ch2 = await challenge(w.address, nft);
  const body = { wallet_address: w.address, nft_token_id: nft, signature: await w.sign(ch2.body.message), message: ch2.body.message };
  assert.equal((await verify(body)).status, 200);
  const replay = await verify(body);
  assert.equal(replay.status, 401);
  assert.equal(replay.body.error.code, 'INVALID_SIGNATURE');

  const ch3 = await challenge(w.address, nft);
  const other = await verify({ wallet_address: w.address, nft_token_id: nft2, signature: await w.sign(ch3.body.message), message: ch3.body.message });
  assert.equal(other.status, 401);

  const made = 'localhost wants you to sign in with your Ethereum account:\n' + w.address + '\n\nURI: http://x\nVersion: 1\nChain ID: 1\nNonce: 0123456789abcdef\nIssued At: 2026-01-01T00:00:00Z';
  const invented = await verify({ wallet_address: w.address, nft_token_id: nft, signature: await w.sign(made), message: made });
  assert.equal(invented.status, 401);
});

test('an expired challenge is refused', async () => {
  const w = newEvmWallet();
  const nft = nextNft();
  assignNft(server, nft, w.address);
  const ch = await challenge(w.address, nft);
  const signature = await w.sign(ch.body.message);
  clock += 5 * 60_000 + 1000;
  const vr = await verify({ wallet_address: w.address, nft_token_id: nft, signature, message: ch.body.message });
  assert.equal(vr.status, 401);
  assert.equal(vr.body.error.code, 'INVALID_SIGNATURE');
  assert.match(vr.body.error.details.reason, /expired/);
});

test("someone else's NFT: FORBIDDEN at challenge, and at verify when ownership moved meanwhile", async () => {
  const owner = newEvmWallet();
  const me = newEvmWallet();
  const nft = nextNft();
  assignNft(server, nft, owner.address);
  const r = await challenge(me.address, nft);
  assert.equal(r.status, 403);
  assert.equal(r.body.error.code, 'FORBIDDEN');
  const missing = await challenge(me.address, 'no-such-nft');
  assert.equal(missing.status, 403);

  const ch = await challenge(owner.address, nft);
  assignNft(server, nft, me.address);
  const vr = await verify({ wallet_address: owner.address, nft_token_id: nft, signature: await owner.sign(ch.body.message), message: ch.body.message });
  assert.equal(vr.status, 403);
  assert.equal(vr.body.error.code, 'FORBIDDEN');
});

test('malformed address and signature: INVALID_FIELD naming the field', async () => {
  const w = newEvmWallet();
  const nft = nextNft();
  assignNft(server, nft, w.address);
  // A checksum typo: one letter's case flipped (leaving the address mixed-case, so it claims a checksum).
  const flip = (k: number) => w.address.slice(0, k) + (w.address[k] === w.address[k]!.toUpperCase() ? w.address[k]!.toLowerCase() : w.address[k]!.toUpperCase()) + w.address.slice(k + 1);
  const isMixed = (a: string) => a.slice(2) !== a.slice(2).toLowerCase() && a.slice(2) !== a.slice(2).toUpperCase();
  const typo = [...w.address].map((_, k) => k).filter((k) => k > 1 && /[a-fA-F]/.test(w.address[k]!)).map(flip).find(isMixed)!;
  for (const addr of ['0x1234', 'hello', 'secret1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq', typo]) {
    const r = await challenge(addr, nft);
    assert.equal(r.status, 400, addr);
    assert.equal(r.body.error.code, 'INVALID_FIELD');
    assert.equal(r.body.error.details.field, 'wallet_address');
  }
  const badNft = await challenge(w.address, 'not valid!');
  assert.equal(badNft.body.error.details.field, 'nft_token_id');

  for (const signature of ['0x1234', 'not-hex', '0x' + 'ab'.repeat(64) + '07']) {
    const ch = await challenge(w.address, nft);
    const r = await verify({ wallet_address: w.address, nft_token_id: nft, signature, message: ch.body.message });
    assert.equal(r.status, 400, signature);
    assert.equal(r.body.error.code, 'INVALID_FIELD');
    assert.equal(r.body.error.details.field, 'signature');
  }
  const cw = newCosmosWallet();
  assignNft(server, nft, cw.address);
  const ch = await challenge(cw.address, nft);
  const r = await verify({ wallet_address: cw.address, nft_token_id: nft, signature: 'bm90IDY0IGJ5dGVz', message: ch.body.message });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.details.field, 'signature');
});

test('missing fields: MISSING_FIELD with details.field', async () => {
  const full = { wallet_address: newEvmWallet().address, nft_token_id: '1', signature: '0x' + 'ab'.repeat(65), message: 'm' };
  for (const field of Object.keys(full)) {
    const body: Record<string, unknown> = { ...full };
    delete body[field];
    const r = await verify(body);
    assert.equal(r.status, 400, field);
    assert.equal(r.body.error.code, 'MISSING_FIELD');
    assert.equal(r.body.error.details.field, field);
  }
  const r = await server.request('POST', '/v1/auth/challenge', { body: { nft_token_id: '1' } });
  assert.equal(r.body.error.code, 'MISSING_FIELD');
  assert.equal(r.body.error.details.field, 'wallet_address');
  const rr = await server.request('POST', '/v1/auth/refresh', { body: {} });
  assert.equal(rr.body.error.details.field, 'refresh_token');
});

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

test('tokens: missing, garbled, alg none, another key, tampered: UNAUTHORIZED; expired: TOKEN_EXPIRED', async () => {
  const s = await signIn(server, { nft: nextNft() });
  const ok = await server.request('GET', '/v1/auth/session', { token: s.access_token });
  assert.equal(ok.status, 200);

  const [h, p, sig] = s.access_token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const other = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const forged = await new jose.SignJWT(claims).setProtectedHeader(header).sign(other.privateKey);
  const cases: Record<string, string | undefined> = {
    missing: undefined,
    garbled: 'not.a.jwt',
    alg_none: `${b64url({ alg: 'none', typ: 'JWT' })}.${p}.`,
    another_key: forged,
    tampered: `${h}.${b64url({ ...claims, sub: newEvmWallet().address })}.${sig}`,
    bad_signature: `${h}.${p}.${sig.slice(0, -4)}AAAA`,
  };
  for (const [name, token] of Object.entries(cases)) {
    const r = await server.request('GET', '/v1/auth/session', { token });
    assert.equal(r.status, 401, name);
    assert.equal(r.body.error.code, 'UNAUTHORIZED', name);
  }
  const noBearer = await server.request('GET', '/v1/auth/session', { headers: { authorization: `Basic ${s.access_token}` } });
  assert.equal(noBearer.body.error.code, 'UNAUTHORIZED');

  clock += 3600_000 + 1000;
  const expired = await server.request('GET', '/v1/auth/session', { token: s.access_token });
  assert.equal(expired.status, 401);
  assert.equal(expired.body.error.code, 'TOKEN_EXPIRED');
  // The refresh token still works after the access token expired.
  const r = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await server.request('GET', '/v1/auth/session', { token: r.body.access_token })).status, 200);
});

test('refresh rotates; reusing a rotated token revokes the whole session', async () => {
  const s = await signIn(server, { nft: nextNft() });
  const r1 = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  assert.equal(r1.status, 200, r1.text);
  assert.deepEqual(Object.keys(r1.body).sort(), ['access_token', 'expires_in', 'refresh_token']);
  assert.notEqual(r1.body.refresh_token, s.refresh_token);
  const r2 = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: r1.body.refresh_token } });
  assert.equal(r2.status, 200);

  // An attacker replays the first (rotated) token: refused, and the session ends for everyone.
  const reuse = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  assert.equal(reuse.status, 401);
  assert.equal(reuse.body.error.code, 'UNAUTHORIZED');
  const current = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: r2.body.refresh_token } });
  assert.equal(current.status, 401, 'the newest token died with the session');
  for (const token of [s.access_token, r1.body.access_token, r2.body.access_token]) {
    const r = await server.request('GET', '/v1/auth/session', { token });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'UNAUTHORIZED');
  }
  const row = server.app.ctx.db.prepare('SELECT revoked_why FROM sessions WHERE id = ?').get(s.session_id) as { revoked_why: string };
  assert.equal(row.revoked_why, 'refresh_token_reuse');
  const stored = server.app.ctx.db.prepare('SELECT COUNT(*) AS n FROM refresh_tokens WHERE hash = ?').get(s.refresh_token) as { n: number };
  assert.equal(stored.n, 0, 'tokens are stored only as hashes');

  const unknown = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: 'nope' } });
  assert.equal(unknown.status, 401);
});

test('three simultaneous refreshes with one token: one rotation, all three get the same new pair (grace window, serialized by the session actor)', async () => {
  const s = await signIn(server, { nft: nextNft() });
  const results = await Promise.all([1, 2, 3].map(() => server.request('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } })));
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
  assert.equal(new Set(results.map((r) => r.body.refresh_token)).size, 1);
  assert.equal(new Set(results.map((r) => r.body.access_token)).size, 1);
  const n = server.app.ctx.db.prepare('SELECT COUNT(*) AS n FROM refresh_tokens WHERE session_id = ?').get(s.session_id) as { n: number };
  assert.equal(n.n, 2, 'rotated once');
});

test('refresh after the NFT changed hands: FORBIDDEN and the session is revoked', async () => {
  const nft = nextNft();
  const s = await signIn(server, { nft });
  assignNft(server, nft, newEvmWallet().address);
  const r = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  assert.equal(r.status, 403);
  assert.equal((await server.request('GET', '/v1/auth/session', { token: s.access_token })).status, 401);
});

test('logout revokes the session: its access and refresh tokens stop working at once', async () => {
  const s = await signIn(server, { nft: nextNft() });
  const other = await signIn(server, { nft: nextNft() });
  const out = await server.request('POST', '/v1/auth/logout', { token: s.access_token });
  assert.equal(out.status, 200, out.text);
  assert.equal(typeof out.body.message, 'string');
  const after = await server.request('GET', '/v1/auth/session', { token: s.access_token });
  assert.equal(after.status, 401);
  assert.equal(after.body.error.code, 'UNAUTHORIZED');
  const again = await server.request('POST', '/v1/auth/logout', { token: s.access_token });
  assert.equal(again.status, 401);
  const refresh = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  assert.equal(refresh.status, 401);
  assert.equal((await server.request('GET', '/v1/auth/session', { token: other.access_token })).status, 200, 'other sessions unaffected');
  const noToken = await server.request('POST', '/v1/auth/logout');
  assert.equal(noToken.status, 401);
});

test('sessions survive a restart: same data dir, old access and refresh tokens still work', async () => {
  const dir = tempDir();
  const first = await startServer({}, {}, dir);
  let s;
  let revoked;
  try {
    s = await signIn(first, { nft: '1' });
    revoked = await signIn(first, { nft: '2' });
    assert.equal((await first.request('POST', '/v1/auth/logout', { token: revoked.access_token })).status, 200);
  } finally {
    await first.stop();
  }
  const second = await startServer({}, {}, dir);
  try {
    const r = await second.request('GET', '/v1/auth/session', { token: s.access_token });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.session_id, s.session_id);
    assert.equal((await second.request('GET', '/v1/auth/session', { token: revoked.access_token })).status, 401, 'revocation survives too');
    const rf = await second.request('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
    assert.equal(rf.status, 200, rf.text);
    assert.equal((await second.request('GET', '/v1/auth/session', { token: rf.body.access_token })).status, 200);
  } finally {
    await second.stop();
  }
});
