import type { ComponentChildren, VNode } from 'preact';

/**
 * Safe Markdown for untrusted agent text: parsed into Preact elements, never into an HTML
 * string, so `<script>`, `<img onerror>` and the like stay visible text. Links keep only
 * http(s) and mailto targets and open with no referrer and no opener. A small subset:
 * paragraphs, headings, lists, quotes, fenced and inline code, bold, italic, links.
 */
export function Markdown({ text }: { text: string }): VNode {
  return <div class="md">{blocks(text)}</div>;
}

function blocks(src: string): VNode[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  const out: VNode[] = [];
  let i = 0;
  let key = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    const fence = /^\s*(```|~~~)\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i]!.trim().startsWith(fence[1]!)) body.push(lines[i++]!);
      i++; // closing fence (or the end while streaming)
      out.push(<pre key={key++}><code data-lang={fence[2] || undefined}>{body.join('\n')}</code></pre>);
      continue;
    }
    if (/^\s*$/.test(line)) {
      i++;
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      // Headings inside a chat reply are kept small: h3-h6 only.
      const level = Math.min(6, h[1]!.length + 2);
      const Tag = `h${level}` as 'h3';
      out.push(<Tag key={key++}>{inline(h[2]!)}</Tag>);
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const body: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i]!)) body.push(lines[i++]!.replace(/^\s*>\s?/, ''));
      out.push(<blockquote key={key++}>{blocks(body.join('\n'))}</blockquote>);
      continue;
    }
    const ul = /^\s*[-*+]\s+/;
    const ol = /^\s*\d{1,9}[.)]\s+/;
    if (ul.test(line) || ol.test(line)) {
      const ordered = ol.test(line);
      const re = ordered ? ol : ul;
      const items: string[] = [];
      while (i < lines.length && re.test(lines[i]!)) items.push(lines[i++]!.replace(re, ''));
      const lis = items.map((t, n) => <li key={n}>{inline(t)}</li>);
      out.push(ordered ? <ol key={key++}>{lis}</ol> : <ul key={key++}>{lis}</ul>);
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && !/^\s*$/.test(lines[i]!) && !/^\s*(```|~~~|#{1,6}\s|>|[-*+]\s|\d{1,9}[.)]\s)/.test(lines[i]!)) para.push(lines[i++]!);
    if (para.length === 0) para.push(lines[i++]!);
    out.push(<p key={key++}>{inline(para.join('\n'))}</p>);
  }
  return out;
}

// Underscore emphasis only at word edges (CommonMark's rule), so snake_case and __dunder__
// inside words stay as written.
const INLINE = /(`+)([\s\S]*?)\1|\*\*([\s\S]+?)\*\*|(?<!\w)__([\s\S]+?)__(?!\w)|\*([^*\s][^*]*?)\*|(?<!\w)_([^_\s][^_]*?)_(?!\w)|\[([^\]]{1,500})\]\(([^)\s]{1,2000})\)/g;

function inline(text: string): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  let last = 0;
  let key = 0;
  // matchAll iterates over its own copy of the pattern: inline() recurses (bold, links), and a
  // shared global RegExp's lastIndex would be reset under the outer loop.
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(...breaks(text.slice(last, m.index), key++));
    if (m[1]) out.push(<code key={key++}>{m[2]}</code>);
    else if (m[3] ?? m[4]) out.push(<strong key={key++}>{inline((m[3] ?? m[4])!)}</strong>);
    else if (m[5] ?? m[6]) out.push(<em key={key++}>{inline((m[5] ?? m[6])!)}</em>);
    else {
      const href = safeHref(m[8]!);
      out.push(href
        ? <a key={key++} href={href} target="_blank" rel="noopener noreferrer nofollow">{inline(m[7]!)}</a>
        : <span key={key++}>{m[0]}</span>);
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(...breaks(text.slice(last), key++));
  return out;
}

function breaks(s: string, key: number): ComponentChildren[] {
  const parts = s.split('\n');
  return parts.flatMap((p, n) => (n === 0 ? [p] : [<br key={`${key}-${n}`} />, p]));
}

/** Only absolute http(s) and mailto links; javascript:, data: and relative targets are refused. */
export function safeHref(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined;
  }
  return u.protocol === 'https:' || u.protocol === 'http:' || u.protocol === 'mailto:' ? u.href : undefined;
}
