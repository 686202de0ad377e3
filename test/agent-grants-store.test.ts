import { runContract } from './helpers/state-engines.js';
import { agentGrantContract } from './stores/agent-grants.contract.js';

runContract('agent-grants store', agentGrantContract);
