/**
 * What docker compose does with a SecretVM's .env (secrets_plaintext) and the compose file's
 * ${VAR} references, as compose-spec/compose-go implements it (checked at commit e70e961c):
 *
 * - dotenv/parser.go: `KEY=VALUE` lines (`export ` prefix allowed, `#` comment lines). Unquoted
 *   values end at the line break, lose a trailing ` #...` comment and trailing blanks, and ARE
 *   interpolated. Double-quoted values may span lines, get the escapes \a \b \f \n \r \t \v \\
 *   \" \$ (as "$$") and \0ooo, and ARE interpolated. Single-quoted values are literal (only \'
 *   is unescaped; any other backslash stays).
 * - dotenv/godotenv.go expandVariables: interpolation looks a name up in the process
 *   environment first, then in the entries above it in the same file.
 * - template/template.go: `$$` is a literal `$`; `$NAME`, `${NAME}`, `${NAME:-d}`, `${NAME-d}`,
 *   `${NAME:+a}`, `${NAME+a}`, `${NAME:?e}`, `${NAME?e}`; names are [_a-z][_a-z0-9]*
 *   (case-insensitive); a value substituted in is not interpolated again.
 */

export type Lookup = (name: string) => string | undefined;

const NAME = '[_a-zA-Z][_a-zA-Z0-9]*';
const PATTERN = new RegExp(`\\$(?:(\\$)|(${NAME})|\\{(${NAME})(?:(:?[-+?])((?:[^{}]|\\{[^{}]*\\})*))?\\}|(\\{))`, 'g');

export class InterpolationError extends Error {}

/** compose-go template.Substitute for one string. */
export function substitute(template: string, lookup: Lookup): string {
  return template.replace(PATTERN, (_m, escaped: string, named: string, braced: string, op: string | undefined, arg: string | undefined, invalid: string) => {
    if (escaped) return '$';
    if (invalid) throw new InterpolationError(`Invalid template: ${JSON.stringify(template)}`);
    const name = named ?? braced;
    const value = lookup(name);
    if (!op) return value ?? '';
    const empty = value === undefined || value === '';
    switch (op) {
      case ':-': return empty ? substitute(arg ?? '', lookup) : value!;
      case '-': return value === undefined ? substitute(arg ?? '', lookup) : value;
      case ':+': return !empty ? substitute(arg ?? '', lookup) : '';
      case '+': return value !== undefined ? substitute(arg ?? '', lookup) : '';
      case ':?': if (empty) throw new InterpolationError(`required variable ${name} is missing a value: ${arg}`); return value!;
      case '?': if (value === undefined) throw new InterpolationError(`required variable ${name} is missing a value: ${arg}`); return value;
    }
    return value ?? '';
  });
}

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '"': '"', '\\': '\\' };

/** compose-go dotenv parsing of a whole .env text. */
export function parseDotenv(src: string, environ: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const lookup: Lookup = (k) => environ(k) ?? (k in out ? out[k] : undefined);
  let rest = src.replace(/^\uFEFF/, '');
  for (;;) {
    rest = rest.replace(/^\s+/, '');
    if (!rest) break;
    if (rest.startsWith('#')) {
      const nl = rest.indexOf('\n');
      if (nl < 0) break;
      rest = rest.slice(nl);
      continue;
    }
    rest = rest.replace(/^export\s+/, '');
    const km = /^([A-Za-z0-9_.\-[\]]+)[ \t]*([=:\n]|$)/.exec(rest);
    if (!km) throw new Error(`unexpected character in variable name: ${rest.split('\n')[0]}`);
    const key = km[1]!;
    rest = rest.slice(km[0].length);
    if (km[2] === '\n' || km[2] === '') {
      const v = environ(key);
      if (v !== undefined) out[key] = v;
      continue;
    }
    rest = rest.replace(/^[ \t]+/, '');
    const q = rest[0];
    if (q !== '"' && q !== "'") {
      const nl = rest.indexOf('\n');
      let value = nl < 0 ? rest : rest.slice(0, nl);
      rest = nl < 0 ? '' : rest.slice(nl);
      value = value.split(' #')[0]!.replace(/\s+$/, '');
      out[key] = substitute(value, lookup);
      continue;
    }
    // Quoted: the same loop as parser.go extractVarValue.
    let chars = '';
    let escape = false;
    let end = -1;
    for (let i = 1; i < rest.length; i++) {
      const c = rest[i]!;
      if (c !== q) {
        if (!escape && c === '\\') {
          escape = true;
          continue;
        }
        if (escape) {
          escape = false;
          chars += '\\';
        }
        chars += c;
        continue;
      }
      if (escape) {
        escape = false;
        chars += c;
        continue;
      }
      end = i;
      break;
    }
    if (end < 0) throw new Error(`unterminated quoted value for ${key}`);
    rest = rest.slice(end + 1);
    if (q === "'") {
      out[key] = chars;
    } else {
      const unescaped = chars.replace(/\\([abfnrtv$"\\]|0[0-7]{0,3})/g, (_m, e: string) => {
        if (e === '$') return '$$';
        if (e.startsWith('0')) return String.fromCharCode(parseInt(e.slice(1) || '0', 8));
        return ESCAPES[e]!;
      });
      out[key] = substitute(unescaped, lookup);
    }
  }
  return out;
}
