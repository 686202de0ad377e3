import { runContract } from './helpers/state-engines.js';
import { sessionContract } from './stores/sessions.contract.js';

runContract('sessions store', sessionContract);
