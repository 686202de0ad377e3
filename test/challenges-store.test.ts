import { runContract } from './helpers/state-engines.js';
import { challengeContract } from './stores/challenges.contract.js';

runContract('challenges store', challengeContract);
