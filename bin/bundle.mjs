// Links the compiled CLI (dist/bin/cli.js and everything it imports) into one CommonJS file,
// dist/panthers.cjs, and writes V8's code cache for it, dist/panthers.cjs.cache; dist/bin/panthers.js
// runs the bundle with that cache when both are fresh (see bin/panthers.ts).
// Native packages stay outside (better-sqlite3, uWebSockets.js), and pino-pretty (loaded only
// for pretty logs): Node loads those from node_modules as before. pino is inside: we use no pino
// transport (the worker files thread-stream would need beside it). Each module's import.meta.url keeps
// its own file's URL, so paths it resolves (the console's files, package.json) are unchanged.
// Why CommonJS: Node 20 keeps no code cache for ES modules (module.enableCompileCache is Node 22),
// while a vm.Script takes one; the cache is made by a warm start (serve until the first 200 of
// /health, then stop), so it holds every function a start runs, compiled: a cold start then
// deserializes instead of parsing and compiling ~1.6 MB (about 45 ms of a ~200 ms start here).
// Usage: node bin/bundle.mjs [--quiet]   (after tsc; `npm run build` runs both)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const out = path.join(dist, 'panthers.cjs');
const cacheFile = `${out}.cache`;
const stale = [path.join(dist, 'panthers.mjs'), cacheFile];
const quiet = process.argv.includes('--quiet');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A production install without devDependencies: the CLI runs its module graph.
  for (const f of [out, ...stale]) fs.rmSync(f, { force: true });
  if (!quiet) console.log('bin/bundle.mjs: esbuild is not installed; dist/bin/panthers.js runs the module graph');
  process.exit(0);
}

/** Rewrites import.meta.url in our compiled files to the file's own URL, relative to the bundle. */
const ownUrls = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist + path.sep)) return undefined;
      const text = await fs.promises.readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'js' };
      const rel = './' + path.relative(dist, args.path).split(path.sep).join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, __bundleUrl).href`), loader: 'js' };
    });
  },
};

const tmp = `${out}.${process.pid}.tmp`;
await esbuild.build({
  entryPoints: [path.join(dist, 'bin', 'cli.js')],
  outfile: tmp,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: ['node20'],
  // Names kept: stack traces and profiles read as the sources do.
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  external: ['better-sqlite3', '@trufflesuite/uws-js-unofficial', 'pino-pretty', 'esbuild'],
  // The bundle's own URL: each of our modules' import.meta.url is resolved against it.
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [ownUrls],
  logLevel: 'warning',
});
for (const f of stale) fs.rmSync(f, { force: true });
fs.renameSync(tmp, out);
if (!quiet) console.log(`CLI linked into ${path.relative(root, out)} (${Math.round(fs.statSync(out).size / 1024)} KB)`);
await warmCodeCache();

/**
 * Serves once from a temp data dir on a free loopback port until /health answers 200, then stops
 * it with SIGTERM; dist/bin/panthers.js writes the code cache as that process exits
 * (PANTHERS_CODE_CACHE_OUT). Best effort: without a cache the bundle still runs, compiled.
 */
async function warmCodeCache() {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const os = await import('node:os');
  const port = await new Promise((resolve, reject) => {
    const srv = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-warm-'));
  const tmpCache = `${cacheFile}.${process.pid}.tmp`;
  // The embedded defaults only: none of this shell's PANTHERS_* settings (a cluster's database,
  // a model server, keys) reach a server started just to warm the cache.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PANTHERS_') && k !== 'PORT' && k !== 'HOST'));
  const child = spawn(process.execPath, [path.join(dist, 'bin', 'panthers.js'), 'serve'], {
    env: { ...env, PORT: String(port), HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, LOG_LEVEL: 'error', PANTHERS_CODE_CACHE_OUT: tmpCache },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const until = Date.now() + 30_000;
    let up = false;
    while (!up && Date.now() < until && child.exitCode === null) {
      up = await fetch(`http://127.0.0.1:${port}/v1/health`).then((r) => r.status === 200, () => false);
      if (!up) await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    if (up && fs.existsSync(tmpCache)) {
      fs.renameSync(tmpCache, cacheFile);
      if (!quiet) console.log(`code cache written to ${path.relative(root, cacheFile)} (${Math.round(fs.statSync(cacheFile).size / 1024)} KB)`);
    } else console.warn('bin/bundle.mjs: the warm start did not answer; the bundle runs without a code cache');
  } finally {
    fs.rmSync(tmpCache, { force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
