import { writeFileSync } from 'node:fs';
import { prng } from './prng.js';

/**
 * Writes a tiny llama-architecture GGUF model with random (seeded) weights and a small
 * SentencePiece-style vocabulary: enough for llama.cpp to load it, tokenize, and generate for
 * real, without downloading weights. Format: GGUF v3 as ggml's docs/gguf.md describes it
 * (header, typed metadata key/values, tensor infos, data aligned to general.alignment = 32);
 * the llama hyperparameter keys and tensor names are those llama.cpp reads (src/llama-arch.cpp,
 * LLM_ARCH_LLAMA), the vocabulary keys those of src/llama-vocab.cpp (SPM: byte tokens <0xXX>
 * are required, it looks them up when a piece is not in the vocabulary).
 */
export interface TinyModelOptions {
  embedding?: number;
  layers?: number;
  heads?: number;
  feedForward?: number;
  contextLength?: number;
  seed?: number;
}

const WORDS = [
  'the', 'panther', 'agent', 'secret', 'network', 'hello', 'world', 'chat', 'token', 'stream', 'model', 'wallet',
  'night', 'jungle', 'shadow', 'gold', 'run', 'fast', 'quiet', 'deep', 'you', 'I', 'we', 'is', 'are', 'a', 'an',
  'of', 'to', 'and', 'in', 'on', 'at', 'how', 'what', 'why', 'yes', 'no', 'maybe', 'today', 'ok', 'good',
];

const T = { UINT32: 4, INT32: 5, FLOAT32: 6, STRING: 8, ARRAY: 9 } as const;
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

type Value =
  | { t: 'u32'; v: number }
  | { t: 'f32'; v: number }
  | { t: 'str'; v: string }
  | { t: 'strs'; v: string[] }
  | { t: 'f32s'; v: number[] }
  | { t: 'i32s'; v: number[] };

class Writer {
  private chunks: Buffer[] = [];
  size = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.push(b);
  }
  i32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    this.push(b);
  }
  u64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.push(b);
  }
  f32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(n);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  pad(align: number): void {
    const n = (align - (this.size % align)) % align;
    if (n) this.push(Buffer.alloc(n));
  }
  value(v: Value): void {
    switch (v.t) {
      case 'u32': this.u32(T.UINT32); this.u32(v.v); break;
      case 'f32': this.u32(T.FLOAT32); this.f32(v.v); break;
      case 'str': this.u32(T.STRING); this.str(v.v); break;
      case 'strs': this.u32(T.ARRAY); this.u32(T.STRING); this.u64(v.v.length); for (const s of v.v) this.str(s); break;
      case 'f32s': this.u32(T.ARRAY); this.u32(T.FLOAT32); this.u64(v.v.length); for (const x of v.v) this.f32(x); break;
      case 'i32s': this.u32(T.ARRAY); this.u32(T.INT32); this.u64(v.v.length); for (const x of v.v) this.i32(x); break;
    }
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}


/** The vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then words with and without the SPM space mark. */
export function tinyVocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE.BYTE);
  }
  for (const w of WORDS) {
    for (const piece of [`\u2581${w}`, w]) {
      tokens.push(piece);
      types.push(TOKEN_TYPE.NORMAL);
    }
  }
  for (const p of ['\u2581', '.', ',', '!', '?', ':']) {
    tokens.push(p);
    types.push(TOKEN_TYPE.NORMAL);
  }
  // SPM merges by score: longer pieces score higher.
  const scores = tokens.map((t, i) => (types[i] === TOKEN_TYPE.NORMAL ? -10 + t.length : 0));
  return { tokens, scores, types };
}

/** Writes the model to `path` and returns its size in bytes. */
export function writeTinyLlamaGguf(path: string, opts: TinyModelOptions = {}): number {
  const nEmbd = opts.embedding ?? 64;
  const nLayer = opts.layers ?? 2;
  const nHead = opts.heads ?? 4;
  const nFf = opts.feedForward ?? 128;
  const nCtx = opts.contextLength ?? 2048;
  const rand = prng(opts.seed ?? 42);
  const vocab = tinyVocabulary();
  const nVocab = vocab.tokens.length;

  const meta: [string, Value][] = [
    ['general.architecture', { t: 'str', v: 'llama' }],
    ['general.name', { t: 'str', v: 'secret-panthers-tiny-test' }],
    ['general.alignment', { t: 'u32', v: 32 }],
    ['general.file_type', { t: 'u32', v: 0 }],
    ['llama.context_length', { t: 'u32', v: nCtx }],
    ['llama.embedding_length', { t: 'u32', v: nEmbd }],
    ['llama.block_count', { t: 'u32', v: nLayer }],
    ['llama.feed_forward_length', { t: 'u32', v: nFf }],
    ['llama.attention.head_count', { t: 'u32', v: nHead }],
    ['llama.attention.head_count_kv', { t: 'u32', v: nHead }],
    ['llama.attention.layer_norm_rms_epsilon', { t: 'f32', v: 1e-5 }],
    ['llama.rope.dimension_count', { t: 'u32', v: nEmbd / nHead }],
    ['llama.vocab_size', { t: 'u32', v: nVocab }],
    ['tokenizer.ggml.model', { t: 'str', v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: 'strs', v: vocab.tokens }],
    ['tokenizer.ggml.scores', { t: 'f32s', v: vocab.scores }],
    ['tokenizer.ggml.token_type', { t: 'i32s', v: vocab.types }],
    ['tokenizer.ggml.unknown_token_id', { t: 'u32', v: 0 }],
    ['tokenizer.ggml.bos_token_id', { t: 'u32', v: 1 }],
    ['tokenizer.ggml.eos_token_id', { t: 'u32', v: 2 }],
  ];

  // [name, dims (ne0 first), init]: 'one' for norms, 'output' for the output projection, else
  // small random values.
  const tensors: [string, number[], 'one' | 'rand' | 'output'][] = [
    ['token_embd.weight', [nEmbd, nVocab], 'rand'],
    ['output_norm.weight', [nEmbd], 'one'],
    ['output.weight', [nEmbd, nVocab], 'output'],
  ];
  for (let i = 0; i < nLayer; i++) {
    tensors.push(
      [`blk.${i}.attn_norm.weight`, [nEmbd], 'one'],
      [`blk.${i}.attn_q.weight`, [nEmbd, nEmbd], 'rand'],
      [`blk.${i}.attn_k.weight`, [nEmbd, nEmbd], 'rand'],
      [`blk.${i}.attn_v.weight`, [nEmbd, nEmbd], 'rand'],
      [`blk.${i}.attn_output.weight`, [nEmbd, nEmbd], 'rand'],
      [`blk.${i}.ffn_norm.weight`, [nEmbd], 'one'],
      [`blk.${i}.ffn_gate.weight`, [nEmbd, nFf], 'rand'],
      [`blk.${i}.ffn_down.weight`, [nFf, nEmbd], 'rand'],
      [`blk.${i}.ffn_up.weight`, [nEmbd, nFf], 'rand'],
    );
  }

  const w = new Writer();
  w.push(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [k, v] of meta) {
    w.str(k);
    w.value(v);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const [name, dims] of tensors) {
    w.str(name);
    w.u32(dims.length);
    for (const d of dims) w.u64(d);
    w.u32(0); // GGML_TYPE_F32
    w.u64(offset);
    const bytes = dims.reduce((a, b) => a * b, 1) * 4;
    sizes.push(bytes);
    offset += Math.ceil(bytes / 32) * 32;
  }
  w.pad(32);
  tensors.forEach(([, dims, init], i) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = Buffer.alloc(Math.ceil(sizes[i]! / 32) * 32);
    for (let j = 0; j < n; j++) {
      let x = init === 'one' ? 1 : (rand() - 0.5) * 0.5;
      // Output rows of byte and control tokens are zero and word rows larger, so the greedy
      // reply is words (readable, valid UTF-8) and rarely the end-of-text token.
      if (init === 'output') x = vocab.types[Math.floor(j / nEmbd)] === TOKEN_TYPE.NORMAL ? x * 8 : 0;
      data.writeFloatLE(x, j * 4);
    }
    w.push(data);
  });
  const out = w.buffer();
  writeFileSync(path, out);
  return out.length;
}
