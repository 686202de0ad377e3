import { runContract } from './helpers/state-engines.js';
import { replayContract } from './stores/replay.contract.js';

runContract('replay store', replayContract);
