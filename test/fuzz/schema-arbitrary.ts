import fc from 'fast-check';

export type Schema = Record<string, any>;

/**
 * Values that satisfy a JSON Schema (the subset the OpenAPI document uses: type, const, enum,
 * pattern, min/maxLength, minimum/maximum, properties/required, items, anyOf/oneOf, $ref).
 * `hints` supply realistic values for named fields (an NFT the caller owns, a conversation that
 * exists) so that generated requests get past the first check and reach the deeper code.
 */
export function valid(schema: Schema | undefined, root: Schema, hints: Record<string, fc.Arbitrary<unknown>> = {}, name?: string): fc.Arbitrary<unknown> {
  if (name && hints[name]) return hints[name]!;
  if (!schema || Object.keys(schema).length === 0) return fc.jsonValue({ maxDepth: 2 });
  if (schema.$ref) return valid(resolve(schema.$ref, root), root, hints, name);
  if ('const' in schema) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...(schema.enum as unknown[]));
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) return fc.oneof(...(alts as Schema[]).map((s) => valid(s, root, hints, name)));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string': {
      if (schema.pattern) {
        const max = schema.maxLength ?? 64;
        return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length <= max && s.length >= (schema.minLength ?? 0));
      }
      return fc.string({ minLength: Math.max(schema.minLength ?? 0, 1), maxLength: Math.min(schema.maxLength ?? 40, 40) })
        .map((s) => (s.trim() ? s : 'x' + s)); // trimmed-empty strings are refused where minLength applies
    }
    case 'integer':
      return fc.integer({ min: schema.minimum ?? 0, max: Math.min(schema.maximum ?? 1000, 1_000_000) });
    case 'number':
      return fc.double({ min: schema.minimum ?? 0, max: schema.maximum ?? 1000, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(valid(schema.items, root, hints), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 3, 3) });
    case 'object':
    case undefined: {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const required = new Set<string>(schema.required ?? []);
      const rec: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, s] of Object.entries(props)) rec[k] = valid(s, root, hints, k);
      return fc.record(rec, { requiredKeys: [...required].filter((k) => k in rec) });
    }
    default:
      return fc.jsonValue({ maxDepth: 1 });
  }
}

export function resolve(ref: string, root: Schema): Schema {
  let at: any = root;
  for (const part of ref.replace(/^#\//, '').split('/')) at = at?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return at ?? {};
}

/** A value of a different JSON type than the schema asks for. */
export function wrongType(schema: Schema | undefined): fc.Arbitrary<unknown> {
  // every JSON type the schema (or any of its alternatives) allows
  const allowed = new Set<string>();
  const collect = (x: Schema | undefined) => {
    if (!x) return;
    for (const alt of [...(x.anyOf ?? []), ...(x.oneOf ?? [])] as Schema[]) collect(alt);
    if (Array.isArray(x.type)) for (const t of x.type) allowed.add(t);
    else if (x.type) allowed.add(x.type);
    else if (x.enum || x.pattern) allowed.add('string');
    else if ('const' in x) allowed.add(x.const === null ? 'null' : Array.isArray(x.const) ? 'array' : typeof x.const);
  };
  collect(schema);
  const all: [string, fc.Arbitrary<unknown>][] = [
    ['string', fc.string({ maxLength: 20 })],
    ['number', fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.constantFrom(1e308, -0, 2 ** 53 + 1))],
    ['boolean', fc.boolean()],
    ['null', fc.constant(null)],
    ['array', fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 })],
    ['object', fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })],
  ];
  const others = all.filter(([t]) => !allowed.has(t) && !(t === 'number' && allowed.has('integer')));
  return fc.oneof(...others.map(([, a]) => a));
}

/** Deeply nested arrays or objects: depth in the thousands, a few bytes per level. */
export const deep = fc.tuple(fc.integer({ min: 100, max: 20_000 }), fc.boolean()).map(([depth, arrays]) => ({ depth, arrays }));

export function deepJson(d: { depth: number; arrays: boolean }): string {
  return d.arrays ? '['.repeat(d.depth) + ']'.repeat(d.depth) : '{"a":'.repeat(d.depth) + '1' + '}'.repeat(d.depth);
}
