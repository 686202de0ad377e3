import { runContract } from './helpers/store-engines.js';
import { replayContract } from './stores/replay.contract.js';

runContract('replay store', replayContract);
