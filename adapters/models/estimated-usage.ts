import { estimateTokens, type ChatMessage, type ModelEvent } from '../../src/models/model-backend.js';

/** The usage event a backend reports when the server gave no counts (or for the scripted model). */
export function estimatedUsage(messages: readonly ChatMessage[], reply: string): Extract<ModelEvent, { type: 'usage' }> {
  let promptTokens = 0;
  for (const m of messages) promptTokens += estimateTokens(m.content);
  return { type: 'usage', promptTokens, completionTokens: reply === '' ? 0 : estimateTokens(reply) };
}
