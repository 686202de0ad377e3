import { ApiError } from '../errors.js';
import type { ModelBackend } from '../models/model-backend.js';

const BACKENDS = ['scripted', 'openai', 'ollama', 'llama'];

/**
 * Resolves an agent's `model` setting: "openai:gpt-4o" (backend and model), "ollama" (a backend
 * with its default model), or a bare model name for the default backend (PANTHERS_MODEL).
 * With an allowlist (PANTHERS_MODELS_ALLOWED) a model not on it is FORBIDDEN.
 */
export function chooseModel(
  setting: string,
  defaultBackend: string,
  backend: (name: string) => ModelBackend | undefined,
  allowed: readonly string[] = [],
): { backend: ModelBackend; model: string } {
  const [head, ...rest] = setting.split(':');
  const named = head !== undefined && BACKENDS.includes(head);
  const name = named ? head : defaultBackend;
  const chosen = backend(name);
  if (!chosen) throw new ApiError('SERVICE_UNAVAILABLE', `Model backend ${name} is not configured`, { backend: name });
  const model = (named ? rest.join(':') : setting) || chosen.defaultModel;
  if (allowed.length && !modelAllowed(allowed, name, model, chosen.defaultModel)) {
    throw new ApiError('FORBIDDEN', `Model ${name}:${model} is not allowed on this server`, { model: `${name}:${model}`, allowed: [...allowed] });
  }
  return { backend: chosen, model };
}

/**
 * Whether an allowlist names a backend's model: "backend:model" exactly, "backend:*" for any of
 * its models, or a bare "backend" for its default model only.
 */
export function modelAllowed(allowed: readonly string[], backend: string, model: string, defaultModel: string): boolean {
  for (const entry of allowed) {
    if (entry === `${backend}:${model}` || entry === `${backend}:*`) return true;
    if (entry === backend && model === defaultModel) return true;
  }
  return false;
}
