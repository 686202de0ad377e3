import type { FeatureModule } from './feature.js';
import { authFeature } from './features/auth.js';
import { guaranteesFeature } from './features/guarantees.js';
import { modelsFeature } from './features/models.js';
import { runtimeFeature } from './features/runtime.js';
import { openapiFeature } from './features/openapi.js';
import { ownershipTransferFeature } from './features/ownership-transfer.js';
import { consoleFeature } from './features/console.js';
import { agentAccessFeature } from './features/agent-access.js';

/** The feature modules wired into every orchestrator process, in order. */
export const features: FeatureModule[] = [authFeature, guaranteesFeature, modelsFeature, runtimeFeature, ownershipTransferFeature, agentAccessFeature, consoleFeature, openapiFeature];
