import type { FeatureModule } from '../feature.js';
import { createModelBackends } from '../../adapters/models/index.js';
import { llamaInstalled, LLAMA_SETUP_COMMAND } from '../../adapters/models/llama-package.js';
import { ConfigError } from '../config.js';

/** Registers the model backends (scripted, openai, ollama, llama) the configuration describes. */
export const modelsFeature: FeatureModule = (f) => {
  const { config } = f.ctx;
  // The default backend must work from the first turn: say now what is missing.
  if (config.model === 'llama') {
    if (!config.llama.modelPath) throw new ConfigError('PANTHERS_LLAMA_MODEL', 'must name a GGUF file when PANTHERS_MODEL=llama');
    if (!llamaInstalled()) throw new ConfigError('PANTHERS_MODEL', `llama needs node-llama-cpp, which is not installed: run \`${LLAMA_SETUP_COMMAND}\``);
  }
  for (const [name, backend] of createModelBackends(config)) {
    f.setModel(name, backend);
    const closable = backend as { close?(): Promise<void> };
    if (closable.close) f.onStop(() => closable.close!());
  }
};
