import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import Module from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The one-file build `npm run build` makes (bin/bundle.mjs): the code cache its warm start wrote
 * is accepted by this Node (a rejected cache costs about 45 ms of every cold start, silently).
 * That the bundle run through the cache still loads what stays outside it (src/dynamic-import.ts)
 * is cli-deploy-chat's `chat --ws` (the `ws` package).
 */
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(dist, 'panthers.cjs');

test('the build leaves a bundle and a code cache this Node accepts', (t) => {
  if (!fs.existsSync(bundle)) return t.skip('no bundle: esbuild is not installed');
  const cachedData = fs.readFileSync(`${bundle}.cache`);
  assert.ok(fs.statSync(`${bundle}.cache`).mtimeMs >= fs.statSync(bundle).mtimeMs, 'the cache is as new as the bundle');
  const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8').replace(/^#!.*/, '')), { filename: bundle, cachedData });
  assert.equal(script.cachedDataRejected, false);
});
