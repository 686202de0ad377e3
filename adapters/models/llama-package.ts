import { importModule } from '../../src/dynamic-import.js';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';

/**
 * Where node-llama-cpp comes from. It is not a dependency of the project: with its GPU builds it
 * is about 730 MB, so it is installed on demand (`npm run setup:llama`) into a folder of its own
 * outside the checkout. Pinned exactly: newer releases were seen to break `npm ci` here
 * (shared/reference/toolchain.md).
 */
export const LLAMA_PACKAGE = 'node-llama-cpp';
export const LLAMA_VERSION = '3.21.1';
export const LLAMA_SETUP_COMMAND = 'npm run setup:llama';

/** The folder the package is installed into: PANTHERS_LLAMA_HOME, else ~/.cache/secret-panthers/llama. */
export function llamaHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.PANTHERS_LLAMA_HOME || join(homedir(), '.cache', 'secret-panthers', 'llama');
}

function entryIn(home: string): string {
  return join(home, 'node_modules', LLAMA_PACKAGE, 'dist', 'index.js');
}

/** True when the pinned package is installed in the llama home. */
export function llamaInstalled(env: NodeJS.ProcessEnv = process.env): boolean {
  return existsSync(entryIn(llamaHome(env)));
}

/**
 * Installs the pinned package into the llama home (idempotent). Its postinstall step is skipped:
 * it only offers to download or build binaries, and the prebuilt CPU binaries ship in the
 * package's platform dependencies (@node-llama-cpp/linux-x64).
 */
export function installLlama(env: NodeJS.ProcessEnv = process.env, stdio: 'inherit' | 'pipe' = 'inherit'): void {
  if (llamaInstalled(env)) return;
  const home = llamaHome(env);
  const r = spawnSync('npm', ['install', '--prefix', home, '--no-audit', '--no-fund', '--ignore-scripts', '--no-save', `${LLAMA_PACKAGE}@${LLAMA_VERSION}`], {
    stdio, env: { ...env, npm_config_loglevel: 'error' },
  });
  if (r.status !== 0) throw new Error(`installing ${LLAMA_PACKAGE}@${LLAMA_VERSION} into ${home} failed (exit ${r.status})`);
}

/** Loads the package (only then: importing it costs ~0.5 s). */
export async function importLlama(env: NodeJS.ProcessEnv = process.env): Promise<any> {
  const entry = entryIn(llamaHome(env));
  if (!existsSync(entry)) {
    throw new Error(`${LLAMA_PACKAGE} ${LLAMA_VERSION} is not installed (looked in ${llamaHome(env)}): run \`${LLAMA_SETUP_COMMAND}\``);
  }
  return importModule(pathToFileURL(entry).href);
}
