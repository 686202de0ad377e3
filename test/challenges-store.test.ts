import { runContract } from './helpers/store-engines.js';
import { challengeContract } from './stores/challenges.contract.js';

runContract('challenges store', challengeContract);
