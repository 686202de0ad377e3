/**
 * Wallet sign-in benchmark (not a test): how many signed challenges one core verifies per second.
 *   node dist/bench/login.bench.js [--seconds 2]
 * 1. EIP-191 recover+compare alone (the CPU cost of POST /auth/verify's signature check)
 * 2. ADR-036 verify, with the public key given and recovered
 * 3. full sign-ins over HTTP against the real server in this process (challenge -> sign -> verify),
 *    sequential and 8 in flight; client signing runs in the same process, so it is measured too.
 */
import { parseArgs } from '../bin/args.js';
import { newEvmKey, recoverPersonalSigner, signPersonal } from '../src/auth/evm-signature.js';
import { newCosmosKey, signAdr036, verifyAdr036 } from '../src/auth/cosmos-signature.js';
import { startServer } from '../test/helpers/server.js';
import { assignOwner } from '../adapters/ownership/registry.js';

const { flags } = parseArgs(process.argv.slice(2));
const seconds = Number(flags.seconds ?? 2);

function rate(name: string, fn: () => void): number {
  for (let i = 0; i < 50; i++) fn(); // warm-up
  const until = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < until) {
    fn();
    n++;
  }
  const perSec = n / ((performance.now() - t0) / 1000);
  console.log(`${name.padEnd(44)} ${Math.round(perSec).toString().padStart(7)} /s  (${n} in ${seconds}s)`);
  return perSec;
}

async function rateAsync(name: string, inFlight: number, fn: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 5; i++) await fn();
  const until = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < until) {
      await fn();
      n++;
    }
  }));
  const perSec = n / ((performance.now() - t0) / 1000);
  console.log(`${name.padEnd(44)} ${Math.round(perSec).toString().padStart(7)} /s  (${n} in ${seconds}s)`);
  return perSec;
}

const MESSAGES = 256;
const evm = newEvmKey();
const evmSigned = Array.from({ length: MESSAGES }, (_, i) => {
  const m = `localhost:3000 wants you to sign in with your Ethereum account:\n${evm.address}\n\nNonce: ${i.toString().padStart(16, '0')}`;
  return { m, s: signPersonal(m, evm.privateKey) };
});
let i = 0;
rate('EVM personal_sign recover + compare', () => {
  const { m, s } = evmSigned[i++ % MESSAGES]!;
  if (recoverPersonalSigner(m, s) !== evm.address) throw new Error('mismatch');
});
rate('EVM personal_sign (client side signing)', () => {
  signPersonal(evmSigned[i++ % MESSAGES]!.m, evm.privateKey);
});

const cosmos = newCosmosKey();
const cosmosSigned = evmSigned.map(({ m }) => ({ m, ...signAdr036(cosmos.address, m, cosmos.privateKey) }));
rate('ADR-036 verify with public_key', () => {
  const c = cosmosSigned[i++ % MESSAGES]!;
  verifyAdr036(cosmos.address, c.m, c.signature, c.pub_key.value);
});
rate('ADR-036 verify, key recovered', () => {
  const c = cosmosSigned[i++ % MESSAGES]!;
  verifyAdr036(cosmos.address, c.m, c.signature);
});

const server = await startServer({ LOG_LEVEL: 'warn' });
try {
  const nft = '1';
  assignOwner(server.app.ctx.db, nft, evm.address);
  const login = async () => {
    const ch = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: evm.address, nft_token_id: nft } });
    if (ch.status !== 200) throw new Error(ch.text);
    const vr = await server.request('POST', '/v1/auth/verify', {
      body: { wallet_address: evm.address, nft_token_id: nft, signature: signPersonal(ch.body.message, evm.privateKey), message: ch.body.message },
    });
    if (vr.status !== 200) throw new Error(vr.text);
  };
  await rateAsync('HTTP challenge + sign + verify, sequential', 1, login);
  await rateAsync('HTTP challenge + sign + verify, 8 in flight', 8, login);
} finally {
  await server.stop();
}
