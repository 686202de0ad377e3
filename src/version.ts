import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// dist/src/version.js and src/version.ts both sit two levels below package.json's folder or one.
function readVersion(): string {
  for (const p of ['../../package.json', '../package.json']) {
    try {
      const pkg = require(p) as { name?: string; version?: string };
      if (pkg.name === 'secret-panthers' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
