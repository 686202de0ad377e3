import { ApiError } from '../errors.js';
import type { ModelBackend } from '../models/model-backend.js';

const BACKENDS = ['scripted', 'openai', 'ollama', 'llama'];

/**
 * Resolves an agent's `model` setting: "openai:gpt-4o" (backend and model), "ollama" (a backend
 * with its default model), or a bare model name for the default backend (PANTHERS_MODEL).
 */
export function chooseModel(
  setting: string,
  defaultBackend: string,
  backend: (name: string) => ModelBackend | undefined,
): { backend: ModelBackend; model: string } {
  const [head, ...rest] = setting.split(':');
  const named = head !== undefined && BACKENDS.includes(head);
  const name = named ? head : defaultBackend;
  const chosen = backend(name);
  if (!chosen) throw new ApiError('SERVICE_UNAVAILABLE', `Model backend ${name} is not configured`, { backend: name });
  const model = named ? rest.join(':') : setting;
  return { backend: chosen, model: model || chosen.defaultModel };
}
