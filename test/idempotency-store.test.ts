import { runContract } from './helpers/state-engines.js';
import { idempotencyContract } from './stores/idempotency.contract.js';

runContract('idempotency store', idempotencyContract);
