import { runContract } from './helpers/store-engines.js';
import { idempotencyContract } from './stores/idempotency.contract.js';

runContract('idempotency store', idempotencyContract);
