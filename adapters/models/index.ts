import type { Config } from '../../src/config.js';
import type { ModelBackend } from '../../src/models/model-backend.js';
import { OllamaBackend } from './ollama.js';
import { OpenAIBackend } from './openai.js';
import { ScriptedBackend } from './scripted.js';
import { LlamaBackend } from './llama.js';

export { OllamaBackend } from './ollama.js';
export { OpenAIBackend } from './openai.js';
export { ScriptedBackend, scriptedReply, splitTokens } from './scripted.js';
export { LlamaBackend } from './llama.js';

/**
 * Every model backend the configuration describes, by name. All are built: the real ones only
 * open a connection (or, for llama, load node-llama-cpp and the GGUF) when a turn uses them, so
 * an unused one costs nothing.
 */
export function createModelBackends(config: Config): Map<string, ModelBackend> {
  const backends: ModelBackend[] = [
    new ScriptedBackend({ delayMs: config.scriptedDelayMs }),
    new OpenAIBackend({
      baseUrl: config.openai.baseUrl,
      apiKey: config.openai.apiKey,
      model: config.openai.model,
      timeoutMs: config.modelTimeoutMs,
      maxTokensField: config.openai.maxTokensField,
    }),
    new OllamaBackend({ baseUrl: config.ollama.baseUrl, model: config.ollama.model, timeoutMs: config.modelTimeoutMs }),
    new LlamaBackend({ ...config.llama, timeoutMs: config.modelTimeoutMs }),
  ];
  return new Map(backends.map((b) => [b.name, b]));
}
