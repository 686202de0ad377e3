// Links the compiled CLI (dist/bin/cli.js and everything it imports) into one ES module,
// dist/panthers.mjs, which dist/bin/panthers.js runs when it is fresh (see bin/panthers.ts).
// Native packages stay outside (better-sqlite3, uWebSockets.js), and pino-pretty (loaded only
// for pretty logs): Node loads those from node_modules as before. pino is inside: we use no pino
// transport (the worker files thread-stream would need beside it). Each module's import.meta.url keeps
// its own file's URL, so paths it resolves (the console's files, package.json) are unchanged.
// Usage: node bin/bundle.mjs [--quiet]   (after tsc; `npm run build` runs both)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const out = path.join(dist, 'panthers.mjs');
const quiet = process.argv.includes('--quiet');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A production install without devDependencies: the CLI runs its module graph.
  fs.rmSync(out, { force: true });
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
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js' };
    });
  },
};

const tmp = `${out}.${process.pid}.tmp`;
await esbuild.build({
  entryPoints: [path.join(dist, 'bin', 'cli.js')],
  outfile: tmp,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: ['node20'],
  // Names kept: stack traces and profiles read as the sources do.
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  external: ['better-sqlite3', '@trufflesuite/uws-js-unofficial', 'pino-pretty', 'esbuild'],
  // CommonJS packages inside the bundle call require() for Node's built-ins.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  plugins: [ownUrls],
  logLevel: 'warning',
});
fs.renameSync(tmp, out);
if (!quiet) console.log(`CLI linked into ${path.relative(root, out)} (${Math.round(fs.statSync(out).size / 1024)} KB)`);
