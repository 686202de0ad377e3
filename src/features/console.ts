import type { FeatureModule } from '../feature.js';
import { consoleRoutes } from '../routes/console.js';

/** The routes the web console reads (also open to any client): sign-in facts, NFTs, providers. */
export const consoleFeature: FeatureModule = (f) => {
  f.addRoutes(consoleRoutes(f.ctx));
};
