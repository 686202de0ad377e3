import type { MetricResult } from './results.js';
import type { Tools } from './tools.js';
import type { World } from './world.js';

/** Sizes of a run: --quick keeps every measurement small so the whole run stays under 60 s. */
export interface Sizes {
  rounds: number;
  /** seconds of one throughput measurement, and of the warm-up before it */
  windowSec: number;
  warmSec: number;
  /**
   * seconds of load before a streaming window (chat_fanout's paced steps, sse_stream): a fresh
   * server compiles its hot paths on V8's helper threads during its first seconds under load
   * (measured on the project: about 10% of a core in the first 5 s, 4% after 12 s; the first
   * chunk of a turn 500 ms late at 1.5 s, 60-120 ms at 8-12 s). Every participant gets the same.
   */
  streamWarmSec: number;
  fanoutClients: number;
  /** ms per token of the capacity steps, slowest first (total rate = clients * 1000 / delay) */
  capacityDelays: number[];
  connections: number;
  connectionsDelayMs: number;
  sseStreams: number;
  wrkConnections: number;
  loginLanes: number;
  verifyBatch: number;
  actors: number;
  oneActorMessages: number;
  writeClients: number;
  coldStartRounds: number;
}

export const FULL: Sizes = {
  rounds: 5,
  windowSec: 3,
  warmSec: 1,
  streamWarmSec: 5,
  fanoutClients: 1000,
  capacityDelays: [50, 10, 5, 3, 2],
  connections: 10_000,
  connectionsDelayMs: 1000,
  sseStreams: 1000,
  wrkConnections: 64,
  loginLanes: 16,
  verifyBatch: 1000,
  actors: 100_000,
  oneActorMessages: 500_000,
  writeClients: 200,
  coldStartRounds: 5,
};

export const QUICK: Sizes = {
  rounds: 1,
  windowSec: 0.6,
  warmSec: 0.2,
  streamWarmSec: 0.2,
  fanoutClients: 200,
  capacityDelays: [50, 5],
  connections: 300,
  connectionsDelayMs: 200,
  sseStreams: 100,
  wrkConnections: 32,
  loginLanes: 8,
  verifyBatch: 100,
  actors: 10_000,
  oneActorMessages: 50_000,
  writeClients: 30,
  coldStartRounds: 1,
};

export interface BenchContext {
  tools: Tools;
  quick: boolean;
  sizes: Sizes;
  world: World;
  /** one progress line (the harness prefixes the scenario) */
  progress(msg: string): void;
  /** failures of the harness or a peer (the run exits non-zero): the project's own are notes */
  errors: string[];
  /** --participants: measure only these */
  participants?: readonly string[];
}

/** Runs the rounds and returns the note the project's failure leaves (peer failures go to ctx.errors). */
export async function rounds(ctx: BenchContext, who: readonly string[], fn: (who: string, round: number) => Promise<void>): Promise<string | undefined> {
  const only = ctx.participants;
  const f = await interleaved(ctx.sizes.rounds, only ? who.filter((w) => only.includes(w)) : who, fn, new Failures(), ctx.progress);
  ctx.errors.push(...f.peerErrors());
  return f.projectNote();
}

/** Joins the parts of a note that are present. */
export function joinNotes(...parts: (string | undefined)[]): string | undefined {
  const s = [...new Set(parts.filter(Boolean))].join('; ');
  return s || undefined;
}

export interface Scenario {
  readonly name: string;
  /** what the scenario needs of the project, to report "n/a (endpoint missing)" early */
  readonly needs: readonly ('auth' | 'deploy' | 'chat_ws' | 'chat_sse')[];
  run(ctx: BenchContext): Promise<MetricResult[]>;
}

/** A participant's measurement that threw: the project's become notes, a peer's fail the run. */
export class Failures {
  readonly byWho = new Map<string, string>();
  add(who: string, e: unknown): void {
    if (!this.byWho.has(who)) this.byWho.set(who, (e as Error).message.split('\n')[0]!.slice(0, 200));
  }
  /** Note text for the project's failure, if any. */
  projectNote(): string | undefined {
    const m = this.byWho.get('project');
    return m ? `project failed: ${m}` : undefined;
  }
  peerErrors(): string[] {
    return [...this.byWho].filter(([w]) => w !== 'project').map(([w, m]) => `${w}: ${m}`);
  }
}

/**
 * Runs fn for each participant, round after round: A B C A B C ... (interleaved). A participant
 * that fails is recorded and left out of later rounds; the others go on.
 */
export async function interleaved(
  rounds: number,
  who: readonly string[],
  fn: (who: string, round: number) => Promise<void>,
  failures = new Failures(),
  progress?: (m: string) => void,
): Promise<Failures> {
  for (let r = 0; r < rounds; r++) {
    for (const w of who) {
      if (failures.byWho.has(w)) continue;
      try {
        await fn(w, r);
      } catch (e) {
        failures.add(w, e);
        progress?.(`${w} failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  return failures;
}
