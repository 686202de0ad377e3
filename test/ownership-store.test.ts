import { runContract } from './helpers/store-engines.js';
import { ownershipContract } from './stores/ownership.contract.js';

runContract('ownership store', ownershipContract);
