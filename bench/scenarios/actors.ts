import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Samples, summarize, type MetricResult } from '../lib/results.js';
import { spawnProc } from '../lib/proc.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'actors-worker.js');

interface ActorFigures {
  actors: number;
  oneActorPerSec: number;
  spreadPerSec: number;
  spawnUs: number;
  passivateUs: number;
  rehydrateUs: number;
  leftAfterSweep: number;
  heapPerActorBytes: number;
  rssPerActorBytes: number;
}

/** The ActorRegistry in-process (a worker pinned to the server CPU): throughput, memory, lifecycle costs. */
export const actors: Scenario = {
  name: 'actors',
  needs: [],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { sizes, tools } = ctx;
    const s = {
      one: new Samples(), spread: new Samples(), heap: new Samples(), idle100k: new Samples(),
      spawn: new Samples(), passivate: new Samples(), rehydrate: new Samples(),
    };
    const problems: string[] = [];
    const failed = await rounds(ctx, ['project'], async (_w, round) => {
      const p = spawnProc(tools, process.execPath, ['--expose-gc', WORKER, String(sizes.actors), String(sizes.oneActorMessages)], { cpu: tools.serverCpu });
      const code = await Promise.race([p.exited, new Promise<number>((r) => setTimeout(() => r(-9), 300_000))]);
      if (code !== 0) {
        await p.stop(100);
        throw new Error(`actors worker exited ${code}: ${p.output().slice(-1500)}`);
      }
      const line = p.output().trim().split('\n').pop()!;
      const f = JSON.parse(line) as ActorFigures;
      if (f.leftAfterSweep !== 0) problems.push(`${f.leftAfterSweep} actors survived the idle sweep`);
      s.one.add('project', f.oneActorPerSec);
      s.spread.add('project', f.spreadPerSec);
      s.heap.add('project', f.heapPerActorBytes);
      s.idle100k.add('project', (f.heapPerActorBytes * 100_000) / 2 ** 20);
      s.spawn.add('project', f.spawnUs);
      s.passivate.add('project', f.passivateUs);
      s.rehydrate.add('project', f.rehydrateUs);
      ctx.progress(
        `round ${round + 1}: one actor ${Math.round(f.oneActorPerSec)} msg/s, ${f.actors} actors ${Math.round(f.spreadPerSec)} msg/s, ` +
          `${Math.round(f.heapPerActorBytes)} B heap/actor, spawn ${f.spawnUs.toFixed(1)} us, passivate ${f.passivateUs.toFixed(2)} us, rehydrate ${f.rehydrateUs.toFixed(1)} us`,
      );
    });
    const note = joinNotes(failed, ...problems);
    const row = (metric: string, unit: string, better: 'higher' | 'lower', x: Samples, extra?: string) =>
      summarize({ name: this.name, metric, unit, better, note: joinNotes(note, extra) }, x, []);
    return [
      row('one_actor', 'msg/s', 'higher', s.one),
      row('spread', `msg/s over ${sizes.actors}`, 'higher', s.spread),
      row('heap_per_idle_actor', 'bytes', 'lower', s.heap),
      row('idle_100k_heap', 'MB', 'lower', s.idle100k, sizes.actors === 100_000 ? undefined : `from ${sizes.actors} actors`),
      row('spawn', 'us/actor', 'lower', s.spawn),
      row('passivate', 'us/actor', 'lower', s.passivate),
      row('rehydrate', 'us/actor', 'lower', s.rehydrate),
    ];
  },
};
