/**
 * A tiny YAML emitter for the two documents the remote adapters render (an Akash SDL and a
 * docker-compose file): block mappings and sequences of plain data. Every string is written
 * double-quoted with JSON escapes, which YAML reads back verbatim, so no value can turn into a
 * number, a boolean, a comment or a new key.
 */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

export function toYaml(value: YamlValue): string {
  return emit(value, 0).replace(/^\n/, '') + '\n';
}

function emit(value: YamlValue, indent: number): string {
  const pad = '  '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return ' []';
    return value
      .map((item) => {
        if (isBlock(item)) {
          // "- " then the block's first line on the same line, the rest indented under it.
          const inner = emit(item, indent + 1).replace(/^\n/, '');
          return `\n${pad}- ${inner.slice(pad.length + 2)}`;
        }
        return `\n${pad}-${emit(item, indent + 1)}`;
      })
      .join('');
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) return ' {}';
    return keys.map((k) => `\n${pad}${key(k)}:${emit(value[k]!, indent + 1)}`).join('');
  }
  return ' ' + scalar(value);
}

function isBlock(v: YamlValue): boolean {
  return v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
}

function key(k: string): string {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(k) ? k : scalar(k);
}

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError('YAML: only finite numbers');
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  // JSON leaves U+2028/2029 and NEL raw; YAML would read them as line breaks.
  return JSON.stringify(v).replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
