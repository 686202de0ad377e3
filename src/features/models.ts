import type { FeatureModule } from '../feature.js';
import { createModelBackends } from '../../adapters/models/index.js';

/** Registers the model backends (scripted, openai, ollama) the configuration describes. */
export const modelsFeature: FeatureModule = (f) => {
  for (const [name, backend] of createModelBackends(f.ctx.config)) f.setModel(name, backend);
};
