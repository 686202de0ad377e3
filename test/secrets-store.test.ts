import { runContract } from './helpers/store-engines.js';
import { secretsContract } from './stores/secrets.contract.js';

runContract('secrets store', secretsContract);
