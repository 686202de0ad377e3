import { redactSecrets, stalled, transportFailure, unavailable, upstreamErrorMessage, type RemoteBackendName } from './backend-errors.js';

export interface StreamingPost {
  backend: RemoteBackendName;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  /** Idle timeout: the longest wait for the response head or for the next chunk of the body. */
  timeoutMs: number;
  signal: AbortSignal;
  /** Strings that must never reach an error message (the API key). */
  secrets: readonly (string | undefined)[];
}

/** How much of a non-2xx body is read to find its error message. */
const ERROR_BODY_LIMIT = 16 * 1024;

/**
 * POSTs JSON and yields the response body as text lines ("\n" or "\r\n" endings removed; a
 * last line without an ending is yielded too). Lines may be split across TCP reads and UTF-8
 * characters across chunks: both are reassembled here.
 *
 * Throws ApiError TIMEOUT when the head or any next chunk takes longer than timeoutMs (the
 * clock only runs while waiting for the server, never while the consumer holds a line), and
 * SERVICE_UNAVAILABLE for connection failures and non-2xx answers.
 *
 * When `signal` aborts, it RETURNS (no error) and the HTTP request is aborted, which makes
 * undici destroy the socket. Leaving early (a consumer `break`) also releases the request.
 */
export async function* postLines(p: StreamingPost): AsyncGenerator<string, void, undefined> {
  if (p.signal.aborted) return;
  const http = new AbortController();
  const onAbort = (): void => http.abort(p.signal.reason);
  p.signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  let complete = false;

  /** Waits for the server with the idle clock running; maps failures to ApiErrors. */
  const fromServer = async <T>(work: () => Promise<T>): Promise<T | typeof ABORTED> => {
    const timer = setTimeout(() => {
      timedOut = true;
      http.abort();
    }, p.timeoutMs);
    try {
      return await work();
    } catch (e) {
      if (p.signal.aborted) return ABORTED;
      if (timedOut) throw stalled(p.backend, p.timeoutMs);
      throw transportFailure(p.backend, e, p.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    const res = await fromServer(() =>
      fetch(p.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...p.headers },
        body: JSON.stringify(p.body),
        signal: http.signal,
      }),
    );
    if (res === ABORTED) return;
    if (!res.ok) {
      const body = res.body;
      const text = body ? await fromServer(() => readLimited(body.getReader(), ERROR_BODY_LIMIT)) : '';
      if (text === ABORTED) return;
      throw unavailable(p.backend, describeStatus(res.status, text, p.secrets), { status: res.status });
    }
    if (!res.body) throw unavailable(p.backend, 'empty response body', { status: res.status });
    const reader = res.body.getReader();

    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const chunk = await fromServer(() => reader.read());
      if (chunk === ABORTED) return;
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        yield line.endsWith('\r') ? line.slice(0, -1) : line;
        if (p.signal.aborted) return;
      }
    }
    buffered += decoder.decode();
    complete = true;
    if (buffered !== '') yield buffered.endsWith('\r') ? buffered.slice(0, -1) : buffered;
  } finally {
    p.signal.removeEventListener('abort', onAbort);
    // Left before the end (abort, error, consumer break): abort the request so undici
    // destroys the socket instead of leaving the server streaming into a dead reader.
    if (!complete) http.abort();
  }
}

const ABORTED = Symbol('aborted');

async function readLimited(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (text.length >= limit) break;
  }
  return text + decoder.decode();
}

function describeStatus(status: number, body: string, secrets: readonly (string | undefined)[]): string {
  let message: string | undefined;
  try {
    message = upstreamErrorMessage(JSON.parse(body));
  } catch {
    // not JSON: a proxy's HTML or text page says nothing a client can use
  }
  return message ? `HTTP ${status}: ${redactSecrets(message, secrets)}` : `HTTP ${status}`;
}
