import fs from 'node:fs';

/**
 * The reply the peers stream. Preferably the project's own chunks, captured from one scripted
 * chat turn (so peers send byte-for-byte the same contents at the same pace); when the
 * project's chat does not exist yet, a deterministic stand-in of the same shape: word tokens
 * that make frames of about 100 bytes.
 */
const WORDS = (
  'the agent considers your question carefully and answers with a short deterministic reply ' +
  'so that every benchmark run streams exactly the same words in exactly the same order while ' +
  'the harness counts each chunk and checks that nothing was lost reordered or delayed'
).split(' ');

export function fallbackChunks(count = 40): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`${WORDS[i % WORDS.length]} `);
  return out;
}

export function writeChunksFile(file: string, chunks: readonly string[]): void {
  fs.writeFileSync(file, JSON.stringify(chunks));
}

export function readChunksFile(file: string | undefined): string[] {
  if (!file) return fallbackChunks();
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(parsed) || parsed.some((c) => typeof c !== 'string') || parsed.length === 0) {
    throw new Error(`${file}: expected a non-empty JSON array of strings`);
  }
  return parsed as string[];
}
