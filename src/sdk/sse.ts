import { PanthersError } from './errors.js';

/** Longest single event the parser buffers; past it the stream is not the API's. */
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

/**
 * The `data` payloads of a text/event-stream body, one per event, in order (WHATWG rules:
 * lines end in LF, CRLF or CR; `:` lines are comments; several `data:` lines join with LF; a
 * blank line ends an event). Works on any fetch body (Node, browsers, workers).
 */
export async function* sseData(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let data: string[] = [];
  let size = 0;
  let finished = false;
  const onAbort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = lineEnd(buf)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(buf[nl] === '\r' && buf[nl + 1] === '\n' ? nl + 2 : nl + 1);
        if (line === '') {
          if (data.length) yield data.join('\n');
          data = [];
          size = 0;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        if (field !== 'data') continue;
        let v = colon < 0 ? '' : line.slice(colon + 1);
        if (v.startsWith(' ')) v = v.slice(1);
        size += v.length;
        if (size > MAX_EVENT_CHARS) throw new PanthersError('INVALID_RESPONSE', `An event of the stream is over ${MAX_EVENT_CHARS} characters`);
        data.push(v);
      }
      if (buf.length > MAX_EVENT_CHARS) throw new PanthersError('INVALID_RESPONSE', `A line of the stream is over ${MAX_EVENT_CHARS} characters`);
      if (done) break;
    }
    finished = true;
    // A last event without its blank line still counts (the server ended the body after it).
    if (data.length) yield data.join('\n');
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // The consumer stopped early (break, throw): close the response instead of leaving it open.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Index of the first CR or LF in s, or -1. A CR at the very end waits for a possible LF. */
function lineEnd(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 10) return i;
    if (c === 13) return i + 1 < s.length ? i : -1;
  }
  return -1;
}
