import * as v from 'valibot';
import { ApiError } from '../errors.js';

/**
 * Validates input against a valibot schema. The first issue becomes the spec's error:
 * a field that is absent -> MISSING_FIELD { field }, anything else -> INVALID_FIELD { field, reason }.
 */
export function validate<T>(schema: v.GenericSchema<unknown, T>, input: unknown, where: 'body' | 'query' | 'message' = 'body'): T {
  const result = v.safeParse(schema, input, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  const field = v.getDotPath(issue) ?? undefined;
  if (issue.input === undefined && field) {
    throw new ApiError('MISSING_FIELD', `Missing required field: ${field}`, { field, in: where });
  }
  if (!field) {
    throw new ApiError('INVALID_REQUEST', `The ${where} is not valid: ${issue.message}`, { in: where, reason: issue.message });
  }
  throw new ApiError('INVALID_FIELD', `Invalid field ${field}: ${issue.message}`, { field, reason: issue.message, in: where });
}

// Reusable pieces for request schemas.

/**
 * A nested JSON object. valibot's v.object takes an array for an object (typeof [] is
 * 'object') and strips it to {}, so `"resources": []` was accepted: refuse arrays first.
 */
export function jsonObject<const E extends v.ObjectEntries>(entries: E, message: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), message),
    v.object(entries, message),
  );
}

/** A non-empty string with a length cap and a message users can act on. */
export const nonEmpty = (max = 256) =>
  v.pipe(v.string('must be a string'), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(max, `must be at most ${max} characters`));

/** NFT token ids: decimal up to uint256 or a short slug (SNIP-721 ids are free-form). */
export const nftTokenId = v.pipe(
  v.string('must be a string'),
  v.regex(/^[A-Za-z0-9_-]{1,78}$/, 'must be 1-78 characters of letters, digits, _ or -'),
);

/** An integer query parameter given as text, with bounds. */
export const intParam = (min: number, max: number, dflt: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, 'must be a whole number'),
      v.transform(Number),
      v.number(),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
    String(dflt),
  );
