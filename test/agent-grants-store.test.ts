import { runContract } from './helpers/store-engines.js';
import { agentGrantContract } from './stores/agent-grants.contract.js';

runContract('agent-grants store', agentGrantContract);
