import fc from 'fast-check';
import { deep, deepJson, resolve, valid, wrongType, type Schema } from './schema-arbitrary.js';

/**
 * What the fuzzer sends, generated from the OpenAPI document (GET /v1/openapi.json) and its WS
 * message schemas (`x-ws-messages`): a valid request or message, then at most one mutation of
 * the body, path, query, method, headers or the way the bytes are delivered. A case knows the
 * answer the spec requires when only its body is wrong and everything else is right.
 */
export interface Operation {
  method: string;
  /** templated path, e.g. /v1/agents/{nft_token_id}/chat */
  path: string;
  auth: boolean;
  pathParams: string[];
  query: { name: string; required: boolean; schema: Schema }[];
  body?: Schema;
  errorCodes: Set<string>;
}

export interface World {
  doc: Schema;
  /** the NFT the fuzzer's token owns, and one it does not (whose data must survive) */
  mine: string;
  theirs: string;
  myConversation: string;
  theirConversation: string;
  myWallet: string;
}

export type TokenKind = 'valid' | 'none' | 'garbage' | 'bad-signature' | 'not-bearer' | 'empty-bearer';

export interface HttpCase {
  kind: 'http';
  op: string;
  method: string;
  target: string;
  token: TokenKind;
  headers: [string, string][];
  /** body bytes as latin1 text (so bad UTF-8 survives the shrinker's printing) */
  body?: string;
  delivery: 'whole' | 'slow' | 'truncated';
  chunked: boolean;
  mutation: string;
  /** the answer required by the spec, when it is determined */
  expect?: { status: number; code: string; field?: string };
  /** targets the other wallet's NFT: a 2xx on an authenticated route is a broken object-level check */
  crossTenant: boolean;
  authRoute: boolean;
}

export type WsFrame = { text: string; binary?: boolean; invalid?: boolean; closes?: string };

export interface WsCase {
  kind: 'ws';
  token: TokenKind;
  frames: WsFrame[];
}

export type Case = HttpCase | WsCase;

export function operations(doc: Schema): Operation[] {
  const ops: Operation[] = [];
  for (const [p, item] of Object.entries(doc.paths as Record<string, Record<string, Schema>>)) {
    if (p === '/ws') continue;
    for (const [m, op] of Object.entries(item)) {
      const params = ((op.parameters ?? []) as Schema[]).map((x) => (x.$ref ? resolve(x.$ref, doc) : x));
      const errorCodes = new Set<string>();
      for (const r of Object.values(op.responses ?? {}) as Schema[]) for (const c of r['x-error-codes'] ?? []) errorCodes.add(c);
      ops.push({
        method: m.toUpperCase(), path: p, auth: (op.security ?? []).some((s: Schema) => 'bearerAuth' in s) && !(op.security ?? []).some((s: Schema) => Object.keys(s).length === 0),
        pathParams: params.filter((x) => x.in === 'path').map((x) => x.name),
        query: params.filter((x) => x.in === 'query').map((x) => ({ name: x.name, required: Boolean(x.required), schema: x.schema ?? {} })),
        body: op.requestBody?.content?.['application/json']?.schema,
        errorCodes,
      });
    }
  }
  return ops;
}

/**
 * Text with a % and only visible ASCII goes into the target as it is (odd escapes like %FF or a
 * lone %); anything else is percent-encoded, so the request line stays one line of three parts
 * (a space inside the target is probed once in fuzz.ts: uWS waits for the rest of a line that
 * never comes).
 */
function raw(v: string): boolean {
  return v.includes('%') && /^[\x21-\x7e]*$/.test(v);
}

const weirdSegment = fc.oneof(
  fc.constantFrom('', '%00', '..%2F..%2Fetc%2Fpasswd', '%FF%FE', '%', '%E2%82', 'null', '-1', '1e309', '%20', '..', '.', '%2F', 'é', '%C3%A9'),
  fc.string({ maxLength: 30 }).map((s) => encodeURIComponent(s)),
  fc.integer({ min: 80, max: 5000 }).map((n) => '9'.repeat(n)),
);

const oddMethods = fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'FOO', 'get', 'post', 'M-SEARCH', 'A'.repeat(300), 'DELETE', 'GET', 'POST', 'CONNECT');

const headerTweaks: fc.Arbitrary<{ name: string; headers: [string, string][]; dropContentType?: boolean }> = fc.oneof(
  fc.constantFrom(
    { name: 'content-type text/plain', headers: [['Content-Type', 'text/plain']] as [string, string][], dropContentType: true },
    { name: 'no content-type', headers: [] as [string, string][], dropContentType: true },
    { name: 'content-type form', headers: [['Content-Type', 'application/x-www-form-urlencoded']] as [string, string][], dropContentType: true },
    { name: 'content-type multipart', headers: [['Content-Type', 'multipart/form-data; boundary=x']] as [string, string][], dropContentType: true },
    { name: 'content-type odd charset', headers: [['Content-Type', 'application/json; charset=utf-16']] as [string, string][], dropContentType: true },
    { name: 'two content-types', headers: [['Content-Type', 'application/json'], ['Content-Type', 'text/html']] as [string, string][], dropContentType: true },
    { name: 'accept event-stream', headers: [['Accept', 'text/event-stream']] as [string, string][] },
    { name: 'expect 100-continue', headers: [['Expect', '100-continue']] as [string, string][] },
    { name: 'x-forwarded-for junk', headers: [['X-Forwarded-For', 'not-an-ip, , 999.1.1.1, ::::']] as [string, string][] },
    { name: 'origin', headers: [['Origin', 'https://evil.example']] as [string, string][] },
    { name: 'idempotency key', headers: [['Idempotency-Key', 'k'.repeat(300)]] as [string, string][] },
    { name: 'x-request-id odd', headers: [['X-Request-Id', '\u00ff\u00fe<script>']] as [string, string][] },
    { name: 'signature junk', headers: [['X-Signature', 'zz'], ['X-Timestamp', 'yesterday']] as [string, string][] },
    { name: 'connection close', headers: [['Connection', 'close']] as [string, string][] },
  ),
  fc.integer({ min: 1, max: 40 }).map((kb) => ({ name: `huge header ${kb} KB`, headers: [['X-Junk', 'j'.repeat(kb * 1024)]] as [string, string][] })),
  // uWS 20.30 parses at most 50 headers; past that it never answers and closes the connection at
  // its 10 s idle timeout (checked once at start-up by the fuzzer, see fuzz.ts), so stay below.
  fc.integer({ min: 20, max: 44 }).map((n) => ({ name: `${n} headers`, headers: Array.from({ length: n }, (_, i) => [`X-H${i}`, String(i)] as [string, string]) })),
  // Header values with control bytes are probed once, not generated: see UWS_PROBES in fuzz.ts.
  fc.string({ maxLength: 20 }).map((v) => ({ name: 'header with odd text', headers: [['X-Odd', v.replace(/[\u0000-\u001f\u007f]/g, '') + ' ;=,"é']] as [string, string][] })),
);

/** A body variant: its text and what the spec then requires (when the rest of the request is right). */
type BodyVariant = { mutation: string; text?: string; expect?: { status: number; code: string; field?: string } };

function bodyVariants(op: Operation, world: World, hints: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<BodyVariant> {
  const schema = op.body ? (op.body.$ref ? resolve(op.body.$ref, world.doc) : op.body) : undefined;
  if (!schema) {
    return fc.oneof(
      { weight: 8, arbitrary: fc.constant<BodyVariant>({ mutation: 'no body' }) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((j) => ({ mutation: 'unexpected body', text: JSON.stringify(j) ?? 'null' })) },
    );
  }
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  const required: string[] = (schema.required ?? []).filter((k: string) => k in props);
  const names = Object.keys(props);
  const base = valid(schema, world.doc, hints) as fc.Arbitrary<Record<string, unknown>>;
  const variants: { weight: number; arbitrary: fc.Arbitrary<BodyVariant> }[] = [
    { weight: 10, arbitrary: base.map((b) => ({ mutation: 'valid body', text: JSON.stringify(b) })) },
    {
      weight: 3,
      arbitrary: fc.tuple(base, fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }))
        .filter(([, k]) => !(k in props) && k !== '__proto__')
        .map(([b, k, v]) => ({ mutation: `extra field ${JSON.stringify(k)}`, text: JSON.stringify({ ...b, [k]: v }) })),
    },
    { weight: 1, arbitrary: base.map((b) => ({ mutation: '__proto__ field', text: JSON.stringify(b).replace(/^\{/, '{"__proto__":{"admin":true,"status":"running"},"constructor":{"prototype":{"x":1}}' + (Object.keys(b).length ? ',' : '')) })) },
    { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('{', '{"a":', '{"message":"x"', '[1,2', 'nul', '{"a":1,}', "{'a':1}", '\u0000', '{"a":1}{"b":2}')).filter((t) => t.trim() !== '').filter((t) => { try { const j = JSON.parse(t); return j === null || typeof j !== 'object' || Array.isArray(j); } catch { return true; } }).map((t) => ({ mutation: 'not JSON', text: t, expect: { status: 400, code: 'INVALID_REQUEST' } })) },
    { weight: 2, arbitrary: fc.oneof(fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }), fc.integer(), fc.constant(null), fc.string({ maxLength: 8 }), fc.boolean()).map((j) => ({ mutation: 'JSON that is not an object', text: JSON.stringify(j), expect: { status: 400, code: 'INVALID_REQUEST' } })) },
    { weight: 1, arbitrary: deep.map((d) => ({ mutation: `nested ${d.depth} deep (whole body)`, text: deepJson(d) })) },
    { weight: 1, arbitrary: fc.tuple(base, deep, fc.constantFrom(...(names.length ? names : ['x']))).map(([b, d, k]) => ({ mutation: `nested ${d.depth} deep in ${k}`, text: JSON.stringify({ ...b, [k]: 0 }).replace(`"${k}":0`, `"${k}":${deepJson(d)}`) })) },
    { weight: 1, arbitrary: fc.tuple(base, fc.integer({ min: 10, max: 600 }), fc.constantFrom(...(names.length ? names : ['x']))).map(([b, kb, k]) => ({ mutation: `huge ${kb} KB string in ${k}`, text: JSON.stringify({ ...b, [k]: 'h'.repeat(kb * 1024) }) })) },
    { weight: 1, arbitrary: fc.integer({ min: 1025, max: 1600 }).map((kb) => ({ mutation: `body of ${kb} KB (over the limit)`, text: JSON.stringify({ pad: 'p'.repeat(kb * 1024) }), expect: { status: 413, code: 'PAYLOAD_TOO_LARGE' } })) },
    {
      weight: 2,
      arbitrary: fc.tuple(base, fc.constantFrom('\xff', '\xfe\xff', '\xc3\x28', '\xed\xa0\x80', '\xf4\x90\x80\x80', '\xc0\xaf', '\x80', '\xe2\x82'))
        .map(([b, bad]) => {
          const j = JSON.stringify(b);
          const at = j.indexOf('":"');
          // bytes that are not UTF-8, inside a string value (or at the end when there is none)
          const text = at >= 0 ? j.slice(0, at + 3) + bad + j.slice(at + 3) : j.slice(0, -1) + (j.length > 2 ? ',' : '') + `"x":"${bad}"}`;
          return { mutation: `bad UTF-8 ${JSON.stringify(bad)}`, text };
        }),
    },
    // An empty body reads as {} (the answer names the first missing field): any 4xx will do.
    { weight: 1, arbitrary: fc.constant<BodyVariant>({ mutation: 'empty body', text: '' }) },
  ];
  if (required.length) {
    variants.push({
      weight: 3,
      arbitrary: fc.tuple(base, fc.constantFrom(...required)).map(([b, k]) => {
        const { [k]: _, ...rest } = b;
        return { mutation: `missing ${k}`, text: JSON.stringify(rest), expect: { status: 400, code: 'MISSING_FIELD', field: k } };
      }),
    });
  }
  if (names.length) {
    variants.push({
      weight: 3,
      arbitrary: fc.constantFrom(...names).chain((k) => fc.tuple(base, wrongType(props[k]!)).map(([b, v]) => ({
        mutation: `wrong type for ${k}`, text: JSON.stringify({ ...b, [k]: v }),
        // null for an optional field is refused as a wrong type too (valibot's optional is not nullable)
        expect: { status: 400, code: 'INVALID_FIELD', field: k },
      }))),
    });
  }
  return fc.oneof(...variants);
}

export function httpCase(ops: Operation[], world: World): fc.Arbitrary<HttpCase> {
  const hints: Record<string, fc.Arbitrary<unknown>> = {
    nft_token_id: fc.oneof({ weight: 8, arbitrary: fc.constant(world.mine) }, { weight: 2, arbitrary: fc.constant(world.theirs) }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,78}$/) }),
    conversation_id: fc.oneof({ weight: 6, arbitrary: fc.constant(world.myConversation) }, { weight: 2, arbitrary: fc.constant(world.theirConversation) }, { weight: 1, arbitrary: fc.uuid() }),
    // valid values only (checks the JSON Schema cannot say, like an EIP-55 checksum): the
    // mutations make the invalid ones, and a case's expected answer relies on the rest being valid
    wallet_address: fc.oneof(fc.constant(world.myWallet), fc.stringMatching(/^0x[0-9a-f]{40}$/)),
    provider: fc.oneof({ weight: 5, arbitrary: fc.constant('local') }, { weight: 1, arbitrary: fc.constantFrom('akash', 'secret_vm') }),
    message: fc.string({ minLength: 1, maxLength: 60 }).map((s) => (s.trim() ? s : 'hello ' + s)),
  };
  return fc.constantFrom(...ops).chain((op) => {
    const pathArb = fc.tuple(...(op.pathParams.length ? op.pathParams.map((p) =>
      fc.oneof({ weight: 12, arbitrary: (hints[p] as fc.Arbitrary<string> | undefined)?.map((v) => ({ v: String(v), ok: v === world.mine, theirs: v === world.theirs })) ?? fc.constant({ v: 'x', ok: true, theirs: false }) },
        { weight: 1, arbitrary: weirdSegment.map((v) => ({ v, ok: false, theirs: false })) })) : [fc.constant({ v: '', ok: true, theirs: false })]));
    const queryArb = fc.tuple(...(op.query.length ? op.query.map((q) => fc.oneof(
      { weight: 6, arbitrary: fc.option(valid(q.schema, world.doc, hints, q.name).map((v) => ({ v: String(v), ok: true })), { freq: 3, nil: undefined }) },
      { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('-1', '1e3', '99999999999999999999', '0x10', '', '%zz', 'NaN')).map((v) => ({ v, ok: false })) },
    )) : [fc.constant(undefined)]));
    return fc.record({
      path: pathArb,
      query: queryArb,
      body: bodyVariants(op, world, hints),
      token: fc.oneof({ weight: 12, arbitrary: fc.constant<TokenKind>('valid') }, { weight: 1, arbitrary: fc.constantFrom<TokenKind>('none', 'garbage', 'bad-signature', 'not-bearer', 'empty-bearer') }),
      // (fc.option's freq is the odds of the nil value: weights say what is meant)
      method: fc.oneof({ weight: 10, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: oddMethods }),
      tweak: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: headerTweaks }),
      delivery: fc.oneof({ weight: 60, arbitrary: fc.constant<'whole'>('whole') }, { weight: 1, arbitrary: fc.constant<'slow'>('slow') }, { weight: 2, arbitrary: fc.constant<'truncated'>('truncated') }),
      chunked: fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    }).map((g): HttpCase => {
      // uWS 20.30 buffers at most 4 KB of a header section that arrives in pieces (it closes the
      // connection past that; probed once in fuzz.ts): big headers go in one write.
      if (g.tweak?.name.startsWith('huge header') && g.delivery === 'slow') g = { ...g, delivery: 'whole' };
      let target = op.path;
      let pathOk = true;
      let crossTenant = false;
      op.pathParams.forEach((p, i) => {
        const seg = g.path[i]!;
        target = target.replace(`{${p}}`, seg.v === '' ? '' : raw(seg.v) ? seg.v : encodeURIComponent(seg.v));
        if (!seg.ok) pathOk = false;
        if (seg.theirs) crossTenant = true;
      });
      let queryOk = true;
      const qs: string[] = [];
      op.query.forEach((q, i) => {
        const x = (g.query as ({ v: string; ok: boolean } | undefined)[])[i];
        if (x === undefined) {
          if (q.required) queryOk = false;
          return;
        }
        if (!x.ok) queryOk = false;
        if (q.name === 'conversation_id' && x.v === world.theirConversation) crossTenant = true;
        qs.push(`${q.name}=${raw(x.v) ? x.v : encodeURIComponent(x.v)}`);
      });
      if (qs.length) target += '?' + qs.join('&');
      const bodyText = g.body.text;
      if (bodyText && /"nft_token_id":"([^"]*)"/.exec(bodyText)?.[1] === world.theirs) crossTenant = true;
      if (bodyText?.includes(JSON.stringify(world.theirConversation))) crossTenant = true;
      const headers: [string, string][] = [];
      if (!g.tweak?.dropContentType && bodyText !== undefined) headers.push(['Content-Type', 'application/json']);
      if (g.tweak) headers.push(...g.tweak.headers);
      // (and any head over 3 KB: a long target counts too)
      const headSize = target.length + headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
      const delivery = g.delivery === 'slow' && headSize > 3000 ? 'whole' : g.delivery;
      const method = g.method ?? op.method;
      const mutations = [g.body.mutation];
      if (g.method) mutations.push(`method ${method.slice(0, 20)}`);
      if (g.tweak) mutations.push(g.tweak.name);
      if (!pathOk) mutations.push('odd path parameter');
      if (!queryOk) mutations.push('odd query');
      if (g.token !== 'valid') mutations.push(`token ${g.token}`);
      if (delivery !== 'whole') mutations.push(`${delivery} delivery`);
      if (g.chunked) mutations.push('chunked body');
      // The spec's answer is determined when only the body is wrong (and is checked then).
      const onlyBody = pathOk && queryOk && !g.method && !g.tweak && delivery !== 'truncated' && (g.token === 'valid' || !op.auth);
      return {
        kind: 'http', op: `${op.method} ${op.path}`, method, target, token: g.token, headers, body: bodyText,
        delivery, chunked: g.chunked && bodyText !== undefined, mutation: mutations.join(', '),
        expect: onlyBody ? g.body.expect : undefined,
        // (a CORS preflight or a 405 for another method says nothing about the resource)
        crossTenant: crossTenant && (method === op.method || (method === 'HEAD' && op.method === 'GET')), authRoute: op.auth,
      };
    });
  });
}

export function wsCase(world: World): fc.Arbitrary<WsCase> {
  const messages = (world.doc.paths['/ws'].get['x-ws-messages'] ?? {}) as Record<string, Schema>;
  const types = Object.keys(messages);
  const hints: Record<string, fc.Arbitrary<unknown>> = {
    nft_token_id: fc.oneof({ weight: 6, arbitrary: fc.constant(world.mine) }, { weight: 1, arbitrary: fc.constant(world.theirs) }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,78}$/) }),
    conversation_id: fc.oneof({ weight: 4, arbitrary: fc.constant(world.myConversation) }, { weight: 1, arbitrary: fc.constant(world.theirConversation) }, { weight: 1, arbitrary: fc.uuid() }),
    message: fc.option(fc.string({ minLength: 1, maxLength: 40 }).map((s) => (s.trim() ? s : 'hi ' + s)), { freq: 3, nil: undefined }),
  };
  const frame: fc.Arbitrary<WsFrame> = fc.constantFrom(...types).chain((t) => {
    const schema = messages[t]!;
    const props = Object.keys(schema.properties ?? {}).filter((k) => k !== 'type');
    const required: string[] = (schema.required ?? []).filter((k: string) => k !== 'type');
    const base = valid(schema, world.doc, hints) as fc.Arbitrary<Record<string, unknown>>;
    const arms: { weight: number; arbitrary: fc.Arbitrary<WsFrame> }[] = [
      { weight: 8, arbitrary: base.map((b) => ({ text: JSON.stringify(b) })) },
      { weight: 2, arbitrary: fc.tuple(base, fc.string({ minLength: 1, maxLength: 10 }), fc.jsonValue({ maxDepth: 1 })).filter(([b, k]) => !(k in b) && k !== '__proto__').map(([b, k, v]) => ({ text: JSON.stringify({ ...b, [k]: v }) })) },
      { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('{', '[]', 'null', '1', '"x"', '{"type":1}', '{"type":""}', '{"type":"nope"}', '{"type":"__proto__"}', '{"type":"constructor"}', '{"type":"toString"}', '{"type":"hasOwnProperty"}')).filter((s) => { try { const j = JSON.parse(s); return !(j && typeof j === 'object' && !Array.isArray(j) && types.includes(j.type)); } catch { return true; } }).map((text) => ({ text, invalid: true })) },
      { weight: 1, arbitrary: deep.map((d) => ({ text: `{"type":${JSON.stringify(t)},"x":${deepJson({ depth: Math.min(d.depth, 9000), arrays: d.arrays })}}` })) },
      { weight: 1, arbitrary: fc.integer({ min: 65, max: 200 }).map((kb) => ({ text: JSON.stringify({ type: t, pad: 'p'.repeat(kb * 1024) }), closes: 'oversized' })) },
      { weight: 1, arbitrary: fc.constantFrom('\xff', '\xc3\x28', '\xed\xa0\x80').map((bad) => ({ text: `{"type":"${t}","x":"${bad}"}`, binary: false, closes: 'bad-utf8' })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => ({ text: Buffer.from(b).toString('latin1'), binary: true, closes: 'binary' })) },
    ];
    if (required.length) arms.push({ weight: 2, arbitrary: fc.tuple(base, fc.constantFrom(...required)).map(([b, k]) => { const { [k]: _, ...rest } = b; return { text: JSON.stringify(rest), invalid: true }; }) });
    if (props.length) arms.push({ weight: 2, arbitrary: fc.constantFrom(...props).chain((k) => fc.tuple(base, wrongType(schema.properties[k])).map(([b, v]) => ({ text: JSON.stringify({ ...b, [k]: v }), invalid: true }))) });
    return fc.oneof(...arms);
  });
  return fc.record({
    token: fc.oneof({ weight: 10, arbitrary: fc.constant<TokenKind>('valid') }, { weight: 1, arbitrary: fc.constantFrom<TokenKind>('none', 'garbage', 'bad-signature') }),
    frames: fc.oneof({ weight: 8, arbitrary: fc.array(frame, { minLength: 1, maxLength: 8 }) }, { weight: 1, arbitrary: fc.tuple(frame, fc.integer({ min: 20, max: 300 })).map(([f, n]) => Array.from({ length: n }, () => f)) }),
  }).map((g) => ({ kind: 'ws', ...g }));
}
