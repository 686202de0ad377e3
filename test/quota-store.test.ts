import { runContract } from './helpers/state-engines.js';
import { quotaContract } from './stores/quota.contract.js';

runContract('quota store', quotaContract);
