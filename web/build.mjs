// Builds the web console into dist/web: esbuild bundles web/src (Preact, TSX) into hashed ES
// modules (the dev wallet's secp256k1 code is a separate chunk loaded only when it is used),
// writes index.html pointing at them, and a .br and a .gz copy of every text file, so the
// server sends precompressed bytes and compresses nothing at run time.
// Usage: node web/build.mjs [--quiet]
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(root, '..', 'dist', 'web');
const assets = path.join(out, 'assets');
const quiet = process.argv.includes('--quiet');

// `npm start` runs this with --if-stale: rebuild only when a file under web/ is newer than the build.
if (process.argv.includes('--if-stale') && fs.existsSync(path.join(out, 'meta.json'))) {
  const built = fs.statSync(path.join(out, 'meta.json')).mtimeMs;
  const newest = Math.max(...walk(root).map((f) => fs.statSync(f).mtimeMs));
  if (newest <= built) process.exit(0);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A production install without devDependencies keeps the console built earlier, if any.
  if (fs.existsSync(path.join(out, 'index.html'))) process.exit(0);
  console.error('web/build.mjs: esbuild is not installed (npm ci installs it); the console is not built');
  process.exit(1);
}

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(assets, { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: path.join(root, 'src', 'main.tsx') },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: assets,
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs);
const entry = outputs.find(([, o]) => o.entryPoint && o.entryPoint.endsWith('main.tsx') && !o.entryPoint.endsWith('.css'));
const jsFile = path.basename(entry[0]);
const cssFile = entry[1].cssBundle ? path.basename(entry[1].cssBundle) : undefined;

const icon = fs.readFileSync(path.join(root, 'icon.svg'));
const iconFile = `icon-${crypto.createHash('sha256').update(icon).digest('hex').slice(0, 8)}.svg`;
fs.writeFileSync(path.join(assets, iconFile), icon);

const html = fs.readFileSync(path.join(root, 'index.html'), 'utf8')
  .replace('%JS%', jsFile).replace('%CSS%', cssFile ?? '').replace('%ICON%', iconFile);
fs.writeFileSync(path.join(out, 'index.html'), html);

// The first page's JavaScript: the entry and the chunks it imports statically (not the lazy ones).
const firstPage = new Set();
const visit = (file) => {
  if (firstPage.has(file)) return;
  firstPage.add(file);
  for (const imp of result.metafile.outputs[file].imports) if (imp.kind === 'import-statement') visit(imp.path);
};
visit(entry[0]);

const sizes = {};
for (const file of walk(out)) {
  if (!/\.(js|css|html|svg|json)$/.test(file)) continue;
  const body = fs.readFileSync(file);
  const gz = zlib.gzipSync(body, { level: 9 });
  const br = zlib.brotliCompressSync(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
  fs.writeFileSync(file + '.gz', gz);
  fs.writeFileSync(file + '.br', br);
  sizes[path.relative(out, file)] = { bytes: body.length, gzip: gz.length, br: br.length };
}
const firstPageJs = [...firstPage].map((f) => path.relative(out, path.resolve(f)));
const firstPageGzip = firstPageJs.reduce((n, f) => n + (sizes[f]?.gzip ?? 0), 0);
const meta = { first_page_js: firstPageJs, first_page_js_gzip_bytes: firstPageGzip, files: sizes };
fs.writeFileSync(path.join(out, 'meta.json'), JSON.stringify(meta, null, 2));
if (!quiet) {
  console.log(`web console built in dist/web: first page JS ${(firstPageGzip / 1024).toFixed(1)} KB gzipped (${firstPageJs.join(', ')})`);
}

function walk(dir) {
  // (hoisted: also used by --if-stale above)
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
