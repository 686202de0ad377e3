// Test helper for the SDK suites: an orchestrator whose `akash` provider starts a real
// `panthers agent` process from the deploy spec's env and secrets (test/helpers/process-provider),
// so the SDKs can be tested against a remote agent and the token exchange. Configured by the same
// env as `panthers serve` (PORT, HOST, PANTHERS_DATA_DIR, ...); stops its agents on SIGTERM.
// Usage: PANTHERS_CLI=dist/bin/panthers.js node remote-orchestrator.mjs
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = path.dirname(path.dirname(path.resolve(process.env.PANTHERS_CLI ?? 'dist/bin/panthers.js')));
const load = (p) => import(pathToFileURL(path.join(dist, p)).href);
const { loadConfig } = await load('src/config.js');
const { createApp } = await load('src/app.js');
const { ProcessProvider } = await load('test/helpers/process-provider.js');

const provider = new ProcessProvider('akash', { PANTHERS_AGENT_REVOCATION_POLL_MS: '200' });
const app = await createApp(loadConfig(process.env), { providers: { akash: provider } });
await app.start();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await provider.stopAll();
  await app.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
