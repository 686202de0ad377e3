/**
 * `npm run setup:llama`: installs the pinned node-llama-cpp (about 730 MB with its GPU builds)
 * outside the checkout, where the llama backend looks for it (PANTHERS_LLAMA_HOME, else
 * ~/.cache/secret-panthers/llama). Idempotent.
 */
import { installLlama, llamaHome, llamaInstalled, LLAMA_PACKAGE, LLAMA_VERSION } from '../adapters/models/llama-package.js';

if (llamaInstalled()) {
  console.log(`${LLAMA_PACKAGE}@${LLAMA_VERSION} is already installed in ${llamaHome()}`);
} else {
  console.log(`installing ${LLAMA_PACKAGE}@${LLAMA_VERSION} into ${llamaHome()} ...`);
  installLlama();
  console.log('done: set PANTHERS_MODEL=llama and PANTHERS_LLAMA_MODEL=/path/to/model.gguf');
}
