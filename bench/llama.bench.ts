/**
 * The embedded llama.cpp backend (not a test): time to first token and tokens per second, for
 * one turn alone and for several NFTs at once sharing the context's sequences.
 *   node dist/bench/llama.bench.js [--model file.gguf] [--tokens 128] [--concurrent 4] [--threads 1]
 * Without --model it writes the tiny random-weight test model (test/helpers/tiny-gguf.ts) and
 * measures that: the runtime's own overhead (scheduling, streaming, usage), not a real model's speed.
 */
import path from 'node:path';
import { parseArgs } from '../bin/args.js';
import { LlamaBackend } from '../adapters/models/llama.js';
import { installLlama } from '../adapters/models/llama-package.js';
import { writeTinyLlamaGguf } from '../test/helpers/tiny-gguf.js';
import { tempDir } from '../test/helpers/server.js';

const { flags } = parseArgs(process.argv.slice(2));
const tokens = Number(flags.tokens ?? 128);
const concurrent = Number(flags.concurrent ?? 4);
const threads = Number(flags.threads ?? 1);
let modelPath = typeof flags.model === 'string' ? flags.model : undefined;
if (!modelPath) {
  modelPath = path.join(tempDir('panthers-llama-bench-'), 'tiny.gguf');
  writeTinyLlamaGguf(modelPath);
}
installLlama();

const backend = new LlamaBackend({ modelPath, contextSize: 2048, threads, gpuLayers: 0, sequences: concurrent, temperature: 0, timeoutMs: 120_000 });
const messages = [
  { role: 'system' as const, content: 'You are a helpful panther.' },
  { role: 'user' as const, content: 'Tell me about the night jungle and the secret network, please.' },
];

async function turn(tenant: string): Promise<{ ttftMs: number; ms: number; completion: number }> {
  const t0 = performance.now();
  let ttft = 0;
  let completion = 0;
  for await (const e of backend.stream({ messages, maxTokens: tokens, tenant, signal: new AbortController().signal })) {
    if (e.type === 'delta' && !ttft) ttft = performance.now() - t0;
    if (e.type === 'usage') completion = e.completionTokens;
  }
  return { ttftMs: ttft, ms: performance.now() - t0, completion };
}

const load0 = performance.now();
await turn('warm-up');
console.log(`model load + first turn: ${Math.round(performance.now() - load0)} ms (${modelPath})`);
const one: { ttftMs: number; ms: number; completion: number }[] = [];
for (let i = 0; i < 5; i++) one.push(await turn('solo'));
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`one turn:   time to first token ${median(one.map((r) => r.ttftMs)).toFixed(1)} ms, ` +
  `${(median(one.map((r) => r.completion / (r.ms / 1000)))).toFixed(0)} tokens/s (${tokens} tokens, median of 5)`);
const t0 = performance.now();
const many = await Promise.all(Array.from({ length: concurrent }, (_, i) => turn(`nft-${i}`)));
const secs = (performance.now() - t0) / 1000;
const total = many.reduce((n, r) => n + r.completion, 0);
console.log(`${concurrent} NFTs at once: ${(total / secs).toFixed(0)} tokens/s in all, first token p50 ${median(many.map((r) => r.ttftMs)).toFixed(1)} ms, max ${Math.max(...many.map((r) => r.ttftMs)).toFixed(1)} ms`);
await backend.close();
