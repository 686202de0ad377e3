import type * as v from 'valibot';
import { toJsonSchema, type JsonSchema } from '@valibot/to-json-schema';

export type SchemaObject = Record<string, unknown>;

/**
 * A valibot schema as an OpenAPI 3.1 (JSON Schema 2020-12) schema object.
 *
 * Checks and transforms with no JSON Schema form (v.check, v.trim, v.transform) are skipped
 * (errorMode 'ignore') rather than failing the whole document. `mode` picks which side of a
 * transforming pipe is described: 'output' for query parameters, whose text is turned into a
 * number by the pipe (intParam), so that a client sees `integer, minimum 1, maximum 100`.
 */
export function jsonSchemaOf(schema: v.GenericSchema, mode: 'ignore' | 'input' | 'output' = 'ignore'): SchemaObject {
  const out = toJsonSchema(schema, { target: 'draft-2020-12', errorMode: 'ignore', typeMode: mode }) as SchemaObject;
  // The dialect is declared once for the document (OpenAPI 3.1 default), not per schema.
  delete out.$schema;
  return out;
}

/**
 * A query parameter's schema from both sides of its pipe: the output side (the bounds a number
 * is checked against) with the input side's facts a client needs: text made only of digits is
 * an integer, and the route's text default (query strings carry text) becomes that number.
 */
export function queryParamSchema(input: SchemaObject, output: SchemaObject): SchemaObject {
  if (input.type !== 'string' || (output.type !== 'number' && output.type !== 'integer')) return output;
  const s: SchemaObject = { ...output };
  if (input.pattern === '^\\d+$') s.type = 'integer';
  if (typeof s.default === 'string' && /^-?\d+(\.\d+)?$/.test(s.default)) s.default = Number(s.default);
  return s;
}

export type { JsonSchema };
