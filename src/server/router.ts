import type { HttpMethod, RouteDef } from './route.js';

export interface Match {
  route: RouteDef;
  params: Record<string, string>;
}

export type MatchResult = Match | { notFound: true } | { methodNotAllowed: string[] };

interface ParamRoute {
  segments: string[];
  /** the `:name` segments: their index and name */
  params: [number, string][];
  route: RouteDef;
}

/**
 * A small router with `:name` path parameters. Static paths are one Map lookup; parametrised
 * paths are compared segment by segment against the few routes of the same length.
 */
export class Router {
  readonly routes: RouteDef[] = [];
  private readonly staticRoutes = new Map<string, Map<string, RouteDef>>();
  private readonly paramRoutes = new Map<number, ParamRoute[]>();

  add(route: RouteDef): this {
    this.routes.push(route);
    if (!route.path.includes(':')) {
      let byMethod = this.staticRoutes.get(route.path);
      if (!byMethod) this.staticRoutes.set(route.path, (byMethod = new Map()));
      if (byMethod.has(route.method)) throw new Error(`duplicate route ${route.method} ${route.path}`);
      byMethod.set(route.method, route);
      return this;
    }
    const segments = route.path.split('/');
    let list = this.paramRoutes.get(segments.length);
    if (!list) this.paramRoutes.set(segments.length, (list = []));
    const params: [number, string][] = [];
    segments.forEach((seg, i) => {
      if (seg.charCodeAt(0) === 58 /* : */) params.push([i, seg.slice(1)]);
    });
    list.push({ segments, params, route });
    return this;
  }

  addAll(routes: RouteDef[]): this {
    for (const r of routes) this.add(r);
    return this;
  }

  match(method: string, path: string): MatchResult {
    const byMethod = this.staticRoutes.get(path);
    if (byMethod) {
      const r = byMethod.get(method) ?? (method === 'HEAD' ? byMethod.get('GET') : undefined);
      if (r) return { route: r, params: {} };
    }
    const parts = path.split('/');
    const candidates = this.paramRoutes.get(parts.length) ?? [];
    // The literal segments first (string compares, nothing allocated); parameters are decoded
    // only for the route that answers. The other methods are looked at once nothing answered.
    for (const c of candidates) {
      if (!literalsMatch(c.segments, parts) || !allows(c.route, method)) continue;
      const params = decodeParams(c.params, parts);
      if (params) return { route: c.route, params };
    }
    const allowed: string[] = byMethod ? [...byMethod.keys()] : [];
    for (const c of candidates) {
      if (!allows(c.route, method) && literalsMatch(c.segments, parts) && decodeParams(c.params, parts)) allowed.push(c.route.method);
    }
    return allowed.length ? { methodNotAllowed: allowed } : { notFound: true };
  }

  methodsFor(path: string): HttpMethod[] {
    const m = this.match('\0', path);
    return 'methodNotAllowed' in m ? (m.methodNotAllowed as HttpMethod[]) : [];
  }
}

function allows(route: RouteDef, method: string): boolean {
  return route.method === method || (method === 'HEAD' && route.method === 'GET');
}

function literalsMatch(pattern: string[], parts: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.charCodeAt(0) !== 58 /* : */ && p !== parts[i]) return false;
  }
  return true;
}

/** The route's parameters from the path, decoded; undefined when one is empty or not valid UTF-8 percent-encoding. */
function decodeParams(params: [number, string][], parts: string[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [i, name] of params) {
    const s = parts[i]!;
    if (s === '') return undefined;
    if (s.indexOf('%') < 0) out[name] = s;
    else {
      try {
        out[name] = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    }
  }
  return out;
}
