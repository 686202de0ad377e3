import { runContract } from './helpers/state-engines.js';
import { ownershipContract } from './stores/ownership.contract.js';

runContract('ownership store', ownershipContract);
