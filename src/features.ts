import type { FeatureModule } from './feature.js';

/** The feature modules wired into every orchestrator process, in order. */
export const features: FeatureModule[] = [];
