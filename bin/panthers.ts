#!/usr/bin/env node
/**
 * The `panthers` entry. `npm run build` also links the whole CLI into one CommonJS file with a
 * V8 code cache beside it (dist/panthers.cjs + .cache, bin/bundle.mjs): a cold start then reads one
 * file and deserializes its compiled code instead of resolving and compiling ~450 modules. This
 * runs it when it is at least as new as the last TypeScript build, and the module graph
 * (bin/cli.ts) otherwise: a plain `tsc` after a build never runs stale code.
 * PANTHERS_NO_BUNDLE=1 forces the module graph.
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import Module, { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { IMPORT_HOOK } from '../src/dynamic-import.js';

const dist = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bundle = path.join(dist, 'panthers.cjs');
const cacheFile = `${bundle}.cache`;

function mtime(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function bundleIsFresh(): boolean {
  if (process.env.PANTHERS_NO_BUNDLE === '1') return false;
  const b = mtime(bundle);
  const t = mtime(path.join(dist, '.tsbuildinfo'));
  return b !== undefined && t !== undefined && b >= t;
}

/** Runs the bundle as Node runs a CommonJS file, compiled from the code cache when it matches. */
function runBundle(): void {
  const source = fs.readFileSync(bundle, 'utf8').replace(/^#!.*/, '');
  const cacheTime = mtime(cacheFile);
  // V8 checks the cache against the source, its version and flags, and compiles anew if it does not fit.
  const cachedData = cacheTime !== undefined && cacheTime >= mtime(bundle)! ? fs.readFileSync(cacheFile) : undefined;
  const script = new vm.Script(Module.wrap(source), {
    filename: bundle,
    cachedData,
  });
  // The bundle's import() of what stays outside it goes through this module (src/dynamic-import.ts):
  // resolved from here, as in the module graph.
  (globalThis as Record<symbol, unknown>)[IMPORT_HOOK] = (specifier: string) => import(specifier);
  // bin/bundle.mjs's warm start: the cache, written as the process exits, holds every function it ran.
  const out = process.env.PANTHERS_CODE_CACHE_OUT;
  if (out) process.once('exit', () => fs.writeFileSync(out, script.createCachedData()));
  const mod = new Module(bundle);
  mod.filename = bundle;
  const require = createRequire(bundle);
  (script.runInThisContext() as (...args: unknown[]) => void).call(mod.exports, mod.exports, require, mod, bundle, dist);
}

if (bundleIsFresh()) runBundle();
else await import('./cli.js');
