import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it, after } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';
import { ApiError } from '../../src/errors.js';
import type { DeployContext, DeployResult, DeploySpec, ProviderAdapter, ProviderRef } from '../../src/providers/provider.js';

/**
 * The lifecycle every ProviderAdapter must honour, run against each implementation (local,
 * akash, secret_vm) with nothing but a factory: deploy with increasing progress -> running ->
 * a deploy resumed from the saved reference reuses the same resource -> stop -> stopped -> stop
 * again is fine.
 */

export interface ContractOptions {
  /** per-test timeout (default 20 s) */
  timeoutMs?: number;
  /** called after the suite (e.g. to close a fake) */
  cleanup?: () => Promise<void> | void;
}

export const CONTRACT_SECRET = 'sk-contract-SECRET-9d41c7e2';

export function contractSpec(overrides: Partial<DeploySpec> = {}): DeploySpec {
  return {
    deploymentId: randomUUID(),
    nftTokenId: '4242',
    resources: { cpu: 0.5, memory_mb: 512, disk_mb: 1024, gpu: 0 },
    agent: { name: 'Contract Panther', system_prompt: 'You are a test agent.', model: 'scripted', capabilities: ['chat'] },
    env: { PANTHERS_MODEL: 'scripted' },
    secrets: { PANTHERS_OPENAI_API_KEY: CONTRACT_SECRET },
    ...overrides,
  };
}

export interface RecordingContext extends DeployContext {
  steps: Array<{ progress: number; message: string }>;
  saved: ProviderRef[];
}

export function recordingContext(ref?: ProviderRef, signal: AbortSignal = new AbortController().signal): RecordingContext {
  const steps: RecordingContext['steps'] = [];
  const saved: ProviderRef[] = [];
  return {
    signal,
    ref,
    steps,
    saved,
    progress: (progress, message) => steps.push({ progress, message }),
    saveRef: (r) => void saved.push(structuredClone(r)),
  };
}

function assertProgress(steps: RecordingContext['steps']): void {
  let last = -1;
  for (const s of steps) {
    assert.ok(Number.isFinite(s.progress) && s.progress >= 0 && s.progress <= 100, `progress ${s.progress} out of 0-100`);
    assert.ok(s.progress > last, `progress went from ${last} to ${s.progress} (must increase)`);
    assert.equal(typeof s.message, 'string');
    assert.ok(s.message.length > 0, 'progress message is empty');
    last = s.progress;
  }
}

export function providerContract(name: string, makeAdapter: () => ProviderAdapter | Promise<ProviderAdapter>, opts: ContractOptions = {}): void {
  const timeout = opts.timeoutMs ?? 20_000;
  describe(`provider contract: ${name}`, () => {
    const spec = contractSpec();
    let adapter: ProviderAdapter;
    let first: DeployResult | undefined;
    let savedRef: ProviderRef | undefined;
    const messages: string[] = [];

    after(async () => {
      if (adapter && savedRef) await adapter.stop(savedRef).catch(() => undefined);
      await opts.cleanup?.();
    });

    it('is configured for the test', { timeout }, async () => {
      adapter = await makeAdapter();
      assert.equal(adapter.missingConfig(), undefined);
    });

    it('deploy reports increasing progress, saves its reference and resolves with an endpoint', { timeout }, async () => {
      const ctx = recordingContext();
      first = await adapter.deploy(spec, ctx);
      assert.ok(ctx.steps.length >= 1, 'no progress reported');
      assertProgress(ctx.steps);
      assert.ok(ctx.saved.length >= 1, 'saveRef was never called');
      savedRef = ctx.saved[ctx.saved.length - 1];
      messages.push(...ctx.steps.map((s) => s.message));
      const url = new URL(first.endpointUrl);
      assert.match(url.protocol, /^https?:$/);
      assert.deepEqual(JSON.parse(JSON.stringify(first.ref)), first.ref, 'ref must be plain JSON');
      assert.deepEqual(first.ref, savedRef, 'the result ref is the last saved ref');
      if (first.details !== undefined) assert.deepEqual(JSON.parse(JSON.stringify(first.details)), first.details);
    });

    it('status says running, with the same endpoint', { timeout }, async () => {
      const st = await adapter.status(first!.ref);
      assert.equal(st.state, 'running', `state ${st.state}: ${st.message ?? ''}`);
      if (st.endpointUrl !== undefined) assert.equal(st.endpointUrl, first!.endpointUrl);
    });

    it('deploy resumed from the saved reference reuses the same resource', { timeout }, async () => {
      const ctx = recordingContext(savedRef);
      const again = await adapter.deploy(spec, ctx);
      assertProgress(ctx.steps);
      messages.push(...ctx.steps.map((s) => s.message));
      assert.deepEqual(again.ref, first!.ref, 'a resumed deploy must not create another resource');
      for (const r of ctx.saved) assert.deepEqual(r, first!.ref, 'a resumed deploy saved a different reference');
      assert.equal(again.endpointUrl, first!.endpointUrl);
    });

    it('stop releases it and status says stopped', { timeout }, async () => {
      await adapter.stop(first!.ref);
      const st = await adapter.status(first!.ref);
      assert.equal(st.state, 'stopped', `state ${st.state}: ${st.message ?? ''}`);
    });

    it('stop again is fine', { timeout }, async () => {
      await adapter.stop(first!.ref);
      const st = await adapter.status(first!.ref);
      assert.equal(st.state, 'stopped');
    });

    it('no secret value in the reference, details, progress or status', { timeout }, async () => {
      const seen = JSON.stringify([first, savedRef, messages, await adapter.status(first!.ref)]);
      for (const v of Object.values(spec.secrets)) assert.ok(!seen.includes(v), 'a secret leaked into what the provider reported');
    });
  });
}

/** A pino logger whose lines are kept, to assert what was (not) logged. */
export function captureLogger(): { log: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(l);
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: sink }), lines, text: () => lines.join('\n') };
}

/** Asserts that no value of `secrets` appears anywhere in the given things (logs, errors, refs...). */
export function assertNoSecret(secrets: Record<string, string>, ...things: unknown[]): void {
  const text = things
    .map((t) => (t instanceof Error ? `${t.message} ${JSON.stringify((t as { details?: unknown }).details ?? {})} ${t.stack ?? ''}` : typeof t === 'string' ? t : JSON.stringify(t)))
    .join('\n');
  for (const v of Object.values(secrets)) assert.ok(!text.includes(v), `secret value leaked: ...${text.slice(Math.max(0, text.indexOf(v) - 80), text.indexOf(v))}`);
}

/**
 * Runs a deploy that must fail: returns its ApiError after checking that no secret of the spec
 * leaked into the error, the captured logs, the progress messages or the saved references.
 */
export async function failingDeploy(
  h: { adapter: ProviderAdapter; logs: { text(): string } },
  ctx: RecordingContext = recordingContext(),
): Promise<ApiError> {
  const spec = contractSpec();
  const err = await h.adapter.deploy(spec, ctx).then(
    () => assert.fail('deploy should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
  assertNoSecret(spec.secrets, err, h.logs.text(), ctx.steps, ctx.saved);
  return err;
}
