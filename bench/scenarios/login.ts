import { Wallet } from 'ethers';
import { openDatabase } from '../../src/db/database.js';
import { NA_MISSING, Samples, summarize, type MetricResult } from '../lib/results.js';
import { call } from '../lib/project-session.js';
import { CpuMeter } from '../lib/proc.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';

const LANE_NFT_BASE = 900_000;
const VERIFY_NFT_BASE = 910_000;

/**
 * Wallet sign-in cost: challenge + personal_sign + verify per second with several lanes in
 * flight, and verify alone (challenges signed beforehand), which is mostly signature recovery.
 * Signing happens in the harness, on the load CPU. Project only: the peers have no sign-in.
 */
export const login: Scenario = {
  name: 'login',
  needs: ['auth'],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { sizes, world, tools } = ctx;
    const missing = world.missingFor(this.needs);
    const logins = new Samples();
    const verifies = new Samples();
    const cpu = new Samples();
    let failed: string | undefined;
    const errors: string[] = [];
    if (!missing) {
      const lanes = Array.from({ length: sizes.loginLanes }, () => Wallet.createRandom());
      // Owners written straight into the registry table: one transaction for every NFT used here.
      const db = openDatabase(world.projectDir);
      const put = db.prepare('INSERT OR REPLACE INTO nft_owners (nft_token_id, owner, updated_at) VALUES (?, ?, ?)');
      db.transaction(() => {
        lanes.forEach((w, i) => put.run(String(LANE_NFT_BASE + i), w.address.toLowerCase(), Date.now()));
        for (let j = 0; j < sizes.verifyBatch; j++) put.run(String(VERIFY_NFT_BASE + j), lanes[j % lanes.length]!.address.toLowerCase(), Date.now());
      })();
      db.close();

      failed = await rounds(ctx, ['project'], async (_w, round) => {
        const t = await world.start('project', 0, false);
        try {
          const one = async (wallet: { address: string; signMessage(m: string): Promise<string> }, nft: string) => {
            const ch = await call(t.url, 'POST', '/v1/auth/challenge', { wallet_address: wallet.address, nft_token_id: nft });
            if (ch.status !== 200 && ch.status !== 201) throw new Error(`challenge answered ${ch.status}: ${ch.text.slice(0, 200)}`);
            const signature = await wallet.signMessage(ch.body.message);
            return { wallet_address: wallet.address, nft_token_id: nft, signature, message: ch.body.message as string };
          };
          // Full sign-in, lanes in parallel for a fixed time.
          const meter = new CpuMeter(t.proc.pid, tools.clockTicks);
          let done = 0;
          const until = performance.now() + sizes.windowSec * 1000;
          const t0 = performance.now();
          meter.start();
          await Promise.all(
            lanes.map(async (wallet, i) => {
              while (performance.now() < until) {
                const body = await one(wallet, String(LANE_NFT_BASE + i));
                const v = await call(t.url, 'POST', '/v1/auth/verify', body);
                if (v.status !== 200 && v.status !== 201) throw new Error(`verify answered ${v.status}: ${v.text.slice(0, 200)}`);
                done++;
              }
            }),
          );
          const loginRate = done / ((performance.now() - t0) / 1000);
          const cpuPct = meter.stop();
          // Verify alone: sign everything first, then only verifies are timed.
          const signed: Awaited<ReturnType<typeof one>>[] = [];
          for (let j = 0; j < sizes.verifyBatch; j++) signed.push(await one(lanes[j % lanes.length]!, String(VERIFY_NFT_BASE + j)));
          let next = 0;
          const v0 = performance.now();
          await Promise.all(
            lanes.map(async () => {
              while (next < signed.length) {
                const body = signed[next++]!;
                const v = await call(t.url, 'POST', '/v1/auth/verify', body);
                if (v.status !== 200 && v.status !== 201) errors.push(`verify answered ${v.status}`);
              }
            }),
          );
          const verifyRate = signed.length / ((performance.now() - v0) / 1000);
          if (errors.length) throw new Error(`${errors.length} verifies failed: ${errors[0]}`);
          logins.add('project', loginRate);
          verifies.add('project', verifyRate);
          cpu.add('project', cpuPct);
          ctx.progress(`round ${round + 1}: ${loginRate.toFixed(0)} sign-ins/s (server CPU ${cpuPct.toFixed(0)}%), ${verifyRate.toFixed(0)} verifies/s`);
        } finally {
          await t.stop();
        }
      });
    }
    const note = joinNotes(missing ? `${NA_MISSING}: ${missing}` : undefined, failed);
    return [
      summarize({ name: this.name, metric: 'sign_ins_per_s', unit: 'challenge+verify/s', better: 'higher', note }, logins, []),
      summarize({ name: this.name, metric: 'sign_in_server_cpu', unit: '% core', better: 'lower', note }, cpu, []),
      summarize({ name: this.name, metric: 'verifies_per_s', unit: 'verify/s', better: 'higher', note }, verifies, []),
    ];
  },
};
