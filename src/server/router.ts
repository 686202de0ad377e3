import type { HttpMethod, RouteDef } from './route.js';

export interface Match {
  route: RouteDef;
  params: Record<string, string>;
}

export type MatchResult = Match | { notFound: true } | { methodNotAllowed: string[] };

interface ParamRoute {
  segments: string[];
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
    list.push({ segments, route });
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
    const allowed: string[] = byMethod ? [...byMethod.keys()] : [];
    const parts = path.split('/');
    const candidates = this.paramRoutes.get(parts.length);
    if (candidates) {
      for (const c of candidates) {
        const params = matchSegments(c.segments, parts);
        if (!params) continue;
        if (c.route.method === method || (method === 'HEAD' && c.route.method === 'GET')) return { route: c.route, params };
        allowed.push(c.route.method);
      }
    }
    return allowed.length ? { methodNotAllowed: allowed } : { notFound: true };
  }

  methodsFor(path: string): HttpMethod[] {
    const m = this.match('\0', path);
    return 'methodNotAllowed' in m ? (m.methodNotAllowed as HttpMethod[]) : [];
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  let params: Record<string, string> | undefined;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const s = parts[i]!;
    if (p.charCodeAt(0) === 58 /* : */) {
      if (s === '') return undefined;
      let value: string;
      try {
        value = decodeURIComponent(s);
      } catch {
        return undefined;
      }
      (params ??= {})[p.slice(1)] = value;
    } else if (p !== s) {
      return undefined;
    }
  }
  return params ?? {};
}
