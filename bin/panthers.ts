#!/usr/bin/env node
/**
 * The `panthers` entry. `npm run build` also links the whole CLI into one file
 * (dist/panthers.mjs, bin/bundle.mjs): a cold start then reads, resolves and compiles one module
 * instead of ~450 (half the CPU time to the first answer). This runs it when it is at least as
 * new as the last TypeScript build, and the module graph (bin/cli.ts) otherwise: a plain
 * `tsc` after a build never runs stale code. PANTHERS_NO_BUNDLE=1 forces the module graph.
 */
import fs from 'node:fs';

const bundle = new URL('../panthers.mjs', import.meta.url);

function bundleIsFresh(): boolean {
  if (process.env.PANTHERS_NO_BUNDLE === '1') return false;
  try {
    return fs.statSync(bundle).mtimeMs >= fs.statSync(new URL('../.tsbuildinfo', import.meta.url)).mtimeMs;
  } catch {
    return false;
  }
}

await import(bundleIsFresh() ? bundle.href : './cli.js');
