import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// Tests run from dist/test: the sources are two levels up.
const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Contracts first (issue 17): requests reach actors through src/contracts (message types and the
 * ActorDirectory), so an actor may run on another node. Only the composition code that builds the
 * registry and registers actor kinds may import actors/.
 */
const WIRING = new Set(['src/app.ts', 'src/agent-app.ts', 'src/features/runtime.ts', 'src/features/auth.ts']);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Module specifiers of static imports/exports and dynamic import() calls. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

test('no file under src/ imports actors/ except the composition code that wires them', () => {
  const offenders: string[] = [];
  const files = sources(join(root, 'src'));
  assert.ok(files.length > 50, `found the sources (${files.length} files under ${root}src)`);
  for (const f of files) {
    const rel = relative(root, f).split('\\').join('/');
    if (WIRING.has(rel)) continue;
    for (const s of specifiers(readFileSync(f, 'utf8'))) if (/(^|\/)actors\//.test(s)) offenders.push(`${rel} imports ${s}`);
  }
  assert.deepEqual(offenders, []);
});

test('routes, the server and agents import no actors/ module (the issue names these three)', () => {
  for (const dir of ['src/routes', 'src/server', 'src/agents']) {
    for (const f of sources(join(root, dir))) {
      const bad = specifiers(readFileSync(f, 'utf8')).filter((s) => s.includes('actors/'));
      assert.deepEqual(bad, [], relative(root, f));
    }
  }
});

test('the scanner sees the imports it must catch', () => {
  const sample = "import { A } from '../../actors/agent-actor.js';\nimport type { B } from '../x.js';\nexport { C } from '../actors/registry.js';\nconst m = await import('../actors/session-actor.js');";
  assert.deepEqual(specifiers(sample), ['../../actors/agent-actor.js', '../x.js', '../actors/registry.js', '../actors/session-actor.js']);
});
