import fs from 'node:fs';
import path from 'node:path';
import { Wallet } from 'ethers';
import { openDatabase } from '../../src/db/database.js';
import { fallbackChunks, writeChunksFile } from './chunks.js';
import {
  call, ensureDeployed, EndpointMissing, mintToken, signIn, writePublicJwk, wsChatTurn, type Session,
} from './project-session.js';
import { startPeer, startProject, tempDir, type PeerName, type Target } from './servers.js';
import { profileNodeArgs } from './profile.js';
import type { Tools } from './tools.js';
import { deploymentBody } from '../peers/common.js';

export const BENCH_NFT = '4242';
export const CHAT_MESSAGE = 'Tell me about the benchmark.';
export const BEFORE = 'project-before';

/**
 * Everything scenarios share: the project's data dir with a signed-in wallet and a running local
 * deployment, the chunks one scripted turn produces, and the files the peers start from (the
 * project's public JWK, a token it would accept, a SQLite file with the same deployment row).
 * What the project cannot do yet is recorded per capability, not thrown.
 */
export class World {
  readonly root: string;
  readonly projectDir: string;
  readonly peerDir: string;
  readonly nft = BENCH_NFT;
  session: Session | undefined;
  /** capability -> the endpoint found missing */
  readonly missing = new Map<string, string>();
  /** other failures of the project while preparing (reported as notes) */
  readonly problems: string[] = [];
  chunks: string[] = fallbackChunks();
  chunksFrom: 'project' | 'fallback' = 'fallback';
  /** the scripted model's first chunk comes after one delay (1) or at once (0) */
  firstChunkDelays = 1;
  wallet = '';
  peerToken = '';
  readonly chunksFile: string;
  readonly jwkFile: string;
  readonly deploymentFile: string;
  /** --profile: servers started from now on run under --cpu-prof, the project into DIR, each peer into DIR/peers/<peer> */
  profileDir: string | undefined;
  /**
   * --before=DIST: the same project built from another commit, measured as the participant
   * `project-before` beside the project in the scenarios that compare stacks (a before/after
   * under the same load, interleaved like any peer).
   */
  beforeCli: string | undefined;
  get extraPeers(): string[] {
    return this.beforeCli ? [BEFORE] : [];
  }

  constructor(private readonly tools: Tools) {
    this.root = tempDir('panthers-bench-');
    this.projectDir = path.join(this.root, 'project');
    this.peerDir = path.join(this.root, 'peers');
    this.chunksFile = path.join(this.root, 'chunks.json');
    this.jwkFile = path.join(this.root, 'jwk.json');
    this.deploymentFile = path.join(this.root, 'deployment.json');
  }

  /** The first missing endpoint among the capabilities a scenario needs, if any. */
  missingFor(needs: readonly string[]): string | undefined {
    for (const n of needs) {
      const m = this.missing.get(n);
      if (m) return m;
    }
    return undefined;
  }

  async prepare(log: (m: string) => void): Promise<void> {
    const calibrationDelay = 20;
    let deploymentText: string | undefined;
    let project: Target | undefined;
    try {
      project = await startProject(this.tools, { dataDir: this.projectDir, delayMs: calibrationDelay });
    } catch (e) {
      this.record(['auth', 'deploy', 'chat_ws', 'chat_sse'], new Error(`the project did not start: ${(e as Error).message}`));
    }
    if (project) try {
      try {
        this.session = await signIn(project, this.projectDir, this.nft);
        log(`project: signed in as ${this.session.wallet}`);
      } catch (e) {
        this.record(['auth', 'deploy', 'chat_ws', 'chat_sse'], e);
      }
      if (this.session) {
        try {
          deploymentText = (await ensureDeployed(project, this.session)).text;
          log('project: local deployment running');
        } catch (e) {
          this.record(['deploy', 'chat_ws', 'chat_sse'], e);
        }
      }
      if (this.session && !this.missing.has('chat_ws')) {
        try {
          const turn = await wsChatTurn(project.url, this.session.token, this.nft, CHAT_MESSAGE);
          if (turn.chunks.length === 0) throw new Error('the scripted chat turn produced no chunks');
          this.chunks = turn.chunks;
          this.chunksFrom = 'project';
          // Whether the first chunk comes at once or after one delay, from the quickest of three
          // turns: the first turn of a fresh process (cold code, first writes) can pass the
          // threshold, and a wrong answer shifts every lateness figure by a whole delay.
          let firstMs = turn.firstChunkMs;
          for (let i = 0; i < 2; i++) firstMs = Math.min(firstMs, (await wsChatTurn(project.url, this.session.token, this.nft, CHAT_MESSAGE)).firstChunkMs);
          this.firstChunkDelays = firstMs < calibrationDelay / 2 ? 0 : 1;
          log(`project: one scripted turn = ${turn.chunks.length} chunks, first after ${firstMs.toFixed(1)} ms (quickest of 3)`);
        } catch (e) {
          this.record(['chat_ws'], e);
        }
      }
      if (this.session && !this.missing.has('chat_sse')) {
        try {
          const r = await fetch(`${project.url}/v1/agents/${this.nft}/chat`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${this.session.token}` },
            body: JSON.stringify({ message: CHAT_MESSAGE, stream: true }),
            signal: AbortSignal.timeout(30_000),
          });
          const text = await r.text();
          if (r.status === 404 && text.includes('No route for')) throw new EndpointMissing('POST /v1/agents/{nft}/chat');
          if (r.status !== 200 || !text.includes('"done":true')) throw new Error(`SSE chat answered ${r.status}: ${text.slice(0, 200)}`);
        } catch (e) {
          this.record(['chat_sse'], e);
        }
      }
    } finally {
      await project.stop();
    }
    const peerToken = await mintToken(this.projectDir, this.nft, this.session?.wallet ?? Wallet.createRandom().address);

    // The peers' side: the same key, a token the project would accept, the same row and chunks.
    writeChunksFile(this.chunksFile, this.chunks);
    // mintToken created the signing key if the project never got to.
    writePublicJwk(this.projectDir, this.jwkFile);
    this.peerToken = peerToken;
    this.wallet = JSON.parse(Buffer.from(peerToken.split('.')[1]!, 'base64url').toString()).sub as string;
    const db = openDatabase(this.peerDir);
    try {
      const projectDb = openDatabase(this.projectDir);
      const row = projectDb.prepare('SELECT * FROM deployments WHERE nft_token_id = ? ORDER BY created_at DESC LIMIT 1').get(this.nft) as
        | Record<string, unknown>
        | undefined;
      projectDb.close();
      const now = Date.now();
      const r = row ?? {
        id: '7a0f3c52-3f7e-4a53-9d63-0c8f0a1b2c3d', nft_token_id: this.nft, wallet: this.wallet.toLowerCase(), provider: 'local',
        status: 'running', progress: 100, endpoint_url: `http://localhost:3000/v1/agents/${this.nft}`,
        resources: JSON.stringify({ cpu: 1, memory_mb: 1024, disk_mb: 2048, gpu: 0 }), agent: JSON.stringify({ model: 'scripted' }),
        provider_ref: null, details: null, error: null, health: JSON.stringify({ status: 'healthy' }), created_at: now, updated_at: now,
      };
      const cols = Object.keys(r);
      db.prepare(`INSERT INTO deployments (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`).run(...cols.map((c) => r[c]));
      fs.writeFileSync(this.deploymentFile, deploymentText ?? JSON.stringify(deploymentBody(r as never)));
    } finally {
      db.close();
    }
  }

  private record(caps: string[], e: unknown): void {
    if (e instanceof EndpointMissing) {
      for (const c of caps) if (!this.missing.has(c)) this.missing.set(c, e.endpoint);
    } else {
      const msg = (e as Error).message.split('\n')[0]!;
      this.problems.push(msg);
      for (const c of caps) if (!this.missing.has(c)) this.missing.set(c, `failed: ${msg.slice(0, 120)}`);
    }
  }

  /** Starts the project on the prepared data dir; with `deployed`, waits for its deployment to run. */
  async startProject(delayMs: number, deployed: boolean, env?: Record<string, string>, before = false): Promise<Target> {
    const t = await startProject(this.tools, {
      dataDir: this.projectDir, delayMs, env, nodeArgs: this.profileDir ? profileNodeArgs(this.profileDir) : [], ...(before ? { cli: this.beforeCli, who: BEFORE } : {}),
    });
    if (deployed && this.session) {
      try {
        await ensureDeployed(t, this.session);
      } catch (e) {
        await t.stop();
        throw e;
      }
    }
    return t;
  }

  startPeer(name: PeerName, delayMs: number): Promise<Target> {
    return startPeer(this.tools, name, {
      nodeArgs: this.profileDir ? profileNodeArgs(path.join(this.profileDir, 'peers', name)) : [],
      delayMs, dataDir: this.peerDir, chunksFile: this.chunksFile, jwkFile: this.jwkFile, deploymentFile: this.deploymentFile,
    });
  }

  /** The token and first-chunk offset a target's clients use. */
  tokenFor(who: string): string {
    return who === 'project' || who === BEFORE ? this.session!.token : this.peerToken;
  }

  offsetMs(who: string, delayMs: number): number {
    return (who === 'project' || who === BEFORE ? this.firstChunkDelays : 1) * delayMs;
  }

  /** Starts whichever participant by name. */
  start(who: string, delayMs: number, deployed = true, env?: Record<string, string>): Promise<Target> {
    if (who === BEFORE) return this.startProject(delayMs, deployed, env, true);
    return who === 'project' ? this.startProject(delayMs, deployed, env) : this.startPeer(who as PeerName, delayMs);
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export { call };
