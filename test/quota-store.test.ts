import { runContract } from './helpers/store-engines.js';
import { quotaContract } from './stores/quota.contract.js';

runContract('quota store', quotaContract);
