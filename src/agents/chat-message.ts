import * as v from 'valibot';

/**
 * The one schema of a chat message, for `POST /chat` and the WS `chat_stream` message alike
 * (PANTHERS_MAX_MESSAGE_CHARS): trimmed, not empty, at most `maxChars` characters.
 */
export function chatMessageSchema(maxChars: number) {
  return v.pipe(
    v.string('must be a string'),
    v.trim(),
    v.minLength(1, 'must not be empty'),
    v.maxLength(maxChars, `must be at most ${maxChars} characters`),
  );
}

/** A conversation id as both transports accept it. */
export const conversationIdSchema = v.pipe(v.string('must be a string'), v.regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a conversation id'));

/**
 * The WS frame limit that fits the longest allowed message: JSON may escape a character to
 * 6 bytes (\uXXXX), plus room for the other fields. Never below the old 64 KB.
 */
export function wsMaxPayload(maxChars: number): number {
  return Math.max(64 * 1024, maxChars * 6 + 4096);
}
