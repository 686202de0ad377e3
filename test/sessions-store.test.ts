import { runContract } from './helpers/store-engines.js';
import { sessionContract } from './stores/sessions.contract.js';

runContract('sessions store', sessionContract);
