import { runContract } from './helpers/state-engines.js';
import { secretsContract } from './stores/secrets.contract.js';

runContract('secrets store', secretsContract);
