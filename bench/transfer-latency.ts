import { spawnCli, tempDir, type ServerProcess } from '../test/helpers/server.js';
import { newEvmWallet } from '../test/helpers/wallets.js';
import { openWs } from '../test/helpers/ws.js';
import { cliAssign, closed, signInOver } from '../test/helpers/sign-in-http.js';
import { FakeEvmRpc } from '../test/fakes/evm-rpc.js';
import { openDatabase } from '../src/db/database.js';
import { assignOwner } from '../adapters/ownership/registry.js';

/**
 * `npm run bench:transfer [-- --rounds=N --poll-ms=MS]`: how long after an NFT changes hands the
 * previous owner's WebSocket is closed, per ownership verifier, through the real server process.
 * registry: from the commit of the new owner row by another connection to the SQLite file (what
 * `panthers nft assign` does; its own start-up time is left out);
 * evm: from the Transfer block being mined on the fake node (what eth_blockNumber then reports).
 * A measurement, not a test: it prints min / median / max.
 */
function arg(name: string, dflt: number): number {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
}

const ROUNDS = arg('rounds', 10);
const POLL_MS = arg('poll-ms', 1000);

async function measure(p: ServerProcess, nft: string, seller: ReturnType<typeof newEvmWallet>, transfer: () => Promise<void>): Promise<number> {
  const s = await signInOver(p.url, seller, nft);
  const ws = await openWs(p.url, s.access_token);
  const c = closed(ws.ws);
  const t0 = performance.now();
  await transfer();
  const got = await c;
  if (got.code !== 4003) throw new Error(`expected close 4003, got ${got.code}`);
  return got.at - t0;
}

function summary(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)]!;
  return `${name.padEnd(9)} poll ${POLL_MS} ms, ${s.length} transfers: min ${s[0]!.toFixed(0)} ms, median ${med.toFixed(0)} ms, max ${s.at(-1)!.toFixed(0)} ms`;
}

async function registry(): Promise<number[]> {
  const dataDir = tempDir();
  const wallets = Array.from({ length: ROUNDS + 1 }, () => newEvmWallet());
  await cliAssign(dataDir, '1', wallets[0]!.address);
  const p = await spawnCli(['serve'], { PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_OWNERSHIP_POLL_MS: String(POLL_MS) });
  try {
    const out: number[] = [];
    const db = openDatabase(dataDir);
    for (let i = 0; i < ROUNDS; i++) out.push(await measure(p, '1', wallets[i]!, async () => assignOwner(db, '1', wallets[i + 1]!.address)));
    db.close();
    return out;
  } finally {
    p.child.kill('SIGTERM');
    await p.exited;
  }
}

async function evm(): Promise<number[]> {
  const rpc = await new FakeEvmRpc().start();
  const wallets = Array.from({ length: ROUNDS + 1 }, () => newEvmWallet());
  rpc.owners.set(1n, wallets[0]!.address);
  const p = await spawnCli(['serve'], {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: tempDir(), PANTHERS_RATE_LIMITS: 'off',
    PANTHERS_OWNERSHIP: 'evm', PANTHERS_EVM_RPC_URL: rpc.url, PANTHERS_NFT_CONTRACT: rpc.contract, PANTHERS_OWNERSHIP_POLL_MS: String(POLL_MS),
  });
  try {
    const out: number[] = [];
    for (let i = 0; i < ROUNDS; i++) out.push(await measure(p, '1', wallets[i]!, async () => rpc.transfer(1n, wallets[i + 1]!.address)));
    return out;
  } finally {
    p.child.kill('SIGTERM');
    await p.exited;
    await rpc.stop();
  }
}

console.log(summary('registry', await registry()));
console.log(summary('evm', await evm()));
