import { useEffect, useRef, useState } from 'preact/hooks';
import { call, send } from './api';
import { Markdown } from './markdown';
import { ErrorBox, toShown, useAction, useSecondsLeft, type Shown } from './ui';
import { sessionRefused } from './session';

interface Message {
  role: string;
  content: string;
  timestamp?: string;
  tokens: number;
  incomplete?: boolean;
  /** the reply being streamed now */
  streaming?: boolean;
}

interface Conversation {
  conversation_id: string;
  title: string;
  messages: number;
  updated_at: string;
}

interface HistoryPage {
  messages: Message[];
  total: number;
  pagination: { total: number; offset: number; has_more: boolean };
}

const HISTORY_PAGE = 20;

/**
 * Chat with one NFT's agent: its conversations, paged history (newest page first, older on
 * demand), replies streamed token by token over SSE (fetch, so the token stays in a header),
 * a Stop that aborts the request (the server then stops the model), clear, tokens used.
 */
export function Chat({ nft, onBack }: { nft: string; onBack(): void }) {
  const base = `/v1/agents/${encodeURIComponent(nft)}`;
  const [convs, setConvs] = useState<Conversation[]>([]);
  const [convTotal, setConvTotal] = useState(0);
  const [current, setCurrent] = useState<string | undefined>();
  const [messages, setMessages] = useState<Message[]>([]);
  const [firstLoaded, setFirstLoaded] = useState(0);
  const [draft, setDraft] = useState('');
  const [streamError, setStreamError] = useState<Shown | undefined>();
  const [confirmClear, setConfirmClear] = useState(false);
  const abortRef = useRef<AbortController | undefined>();
  const [streaming, setStreaming] = useState(false);
  const listRef = useRef<HTMLOListElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const act = useAction();

  async function loadConversations(more = false) {
    await act.run(async () => {
      const r = await call<{ data: Conversation[]; pagination: { total: number } }>('GET', `${base}/conversations`, { query: { limit: 20, offset: more ? convs.length : 0 } });
      setConvs(more ? [...convs, ...r.data] : r.data);
      setConvTotal(r.pagination.total);
    });
  }

  async function open(id: string) {
    abortRef.current?.abort();
    setCurrent(id);
    setConfirmClear(false);
    setStreamError(undefined);
    await act.run(async () => {
      const head = await call<HistoryPage>('GET', `${base}/chat/history`, { query: { conversation_id: id, limit: HISTORY_PAGE, offset: 0 } });
      let page = head;
      let offset = 0;
      if (head.total > HISTORY_PAGE) {
        offset = head.total - HISTORY_PAGE;
        page = await call<HistoryPage>('GET', `${base}/chat/history`, { query: { conversation_id: id, limit: HISTORY_PAGE, offset } });
      }
      setMessages(page.messages);
      setFirstLoaded(offset);
    });
  }

  async function loadEarlier() {
    if (!current || firstLoaded === 0) return;
    const offset = Math.max(0, firstLoaded - HISTORY_PAGE);
    await act.run(async () => {
      const page = await call<HistoryPage>('GET', `${base}/chat/history`, { query: { conversation_id: current, limit: firstLoaded - offset, offset } });
      setMessages((m) => [...page.messages, ...m]);
      setFirstLoaded(offset);
    });
  }

  useEffect(() => {
    void loadConversations();
    return () => abortRef.current?.abort();
  }, [nft]);

  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages]);

  async function sendMessage(ev: Event) {
    ev.preventDefault();
    const text = draft.trim();
    if (!text || streaming) return;
    setDraft('');
    setStreamError(undefined);
    const ac = new AbortController();
    abortRef.current = ac;
    setStreaming(true);
    setMessages((m) => [...m, { role: 'user', content: text, tokens: 0 }, { role: 'assistant', content: '', tokens: 0, streaming: true }]);
    const patchLast = (p: Partial<Message>) => setMessages((m) => [...m.slice(0, -1), { ...m[m.length - 1]!, ...p }]);
    let got = '';
    try {
      const res = await send('POST', `${base}/chat`, { body: { message: text, conversation_id: current, stream: true }, signal: ac.signal });
      // A plain reader and TextDecoder (not pipeThrough(TextDecoderStream)): Chromium reported
      // the piped variant's finished uWS responses as net::ERR_ABORTED.
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          if (!data) continue;
          const f = JSON.parse(data) as { content?: string; done: boolean; conversation_id?: string; tokens_used?: number; response?: string; incomplete?: boolean; error?: { code: string; message: string; details?: { retry_after?: number } } };
          if (!f.done) {
            got += f.content ?? '';
            patchLast({ content: got });
            continue;
          }
          if (f.conversation_id && f.conversation_id !== current) {
            setCurrent(f.conversation_id);
            void loadConversations();
          }
          patchLast({ content: f.response ?? got, tokens: f.tokens_used ?? 0, streaming: false, incomplete: f.incomplete, timestamp: new Date().toISOString() });
          if (f.error) setStreamError({ code: f.error.code, message: f.error.message, retryAt: f.error.details?.retry_after ? Date.now() + f.error.details.retry_after * 1000 : undefined });
        }
      }
    } catch (e) {
      if ((e as Error).name === 'AbortError') {
        patchLast({ content: got, streaming: false, incomplete: true });
      } else {
        if (sessionRefused(e)) return;
        // Refused before any reply (rate limited, no agent): take the message back into the box.
        setMessages((m) => (got ? [...m.slice(0, -1), { ...m[m.length - 1]!, streaming: false, incomplete: true }] : m.slice(0, -2)));
        if (!got) setDraft(text);
        setStreamError(toShown(e));
      }
    } finally {
      if (abortRef.current === ac) abortRef.current = undefined;
      setStreaming(false);
      inputRef.current?.focus();
    }
  }

  function stop() {
    abortRef.current?.abort();
  }

  async function clear() {
    if (!current) return;
    if (!confirmClear) return setConfirmClear(true);
    await act.run(async () => {
      await call('POST', `${base}/chat/clear`, { body: { conversation_id: current } });
      setMessages([]);
      setFirstLoaded(0);
      setConfirmClear(false);
      void loadConversations();
    });
  }

  function newConversation() {
    abortRef.current?.abort();
    setCurrent(undefined);
    setMessages([]);
    setFirstLoaded(0);
    setStreamError(undefined);
    inputRef.current?.focus();
  }

  const tokens = messages.reduce((n, m) => n + (m.tokens || 0), 0);
  const streamWait = useSecondsLeft(streamError?.retryAt);

  return (
    <main id="main" class="chat" aria-labelledby="chat-title">
      <div class="chat-head">
        <button type="button" class="secondary" onClick={onBack}>← My agents</button>
        <h1 tabIndex={-1} id="chat-title">Chat with NFT #{nft}</h1>
      </div>
      <div class="chat-body">
        <aside class="convs" aria-label="Conversations">
          <button type="button" onClick={newConversation}>New conversation</button>
          <ul>
            {convs.map((c) => (
              <li key={c.conversation_id}>
                <button type="button" class={`conv ${c.conversation_id === current ? 'chosen' : ''}`} aria-current={c.conversation_id === current ? 'true' : undefined} onClick={() => open(c.conversation_id)}>
                  <span class="conv-title">{c.title || '(empty)'}</span>
                  <span class="muted">{c.messages} messages</span>
                </button>
              </li>
            ))}
          </ul>
          {convs.length < convTotal && <button type="button" class="secondary" onClick={() => loadConversations(true)}>More conversations</button>}
        </aside>
        <section class="thread" aria-label="Messages">
          {firstLoaded > 0 && <button type="button" class="secondary load-earlier" disabled={act.busy} onClick={loadEarlier}>Load earlier messages ({firstLoaded})</button>}
          <ol class="messages" ref={listRef} aria-live="polite" aria-relevant="additions text">
            {messages.length === 0 && <li class="muted empty">{current ? 'This conversation is empty.' : 'Say something to start a conversation.'}</li>}
            {messages.map((m, i) => (
              <li key={i} class={`msg msg-${m.role} ${m.streaming ? 'streaming' : ''}`} data-role={m.role}>
                <span class="sr-only">{m.role === 'user' ? 'You' : 'Agent'}:</span>
                {m.role === 'assistant' ? <Markdown text={m.content} /> : <p class="plain">{m.content}</p>}
                <span class="meta">
                  {m.streaming ? 'streaming…' : m.incomplete ? 'stopped' : ''}
                  {m.tokens ? ` ${m.tokens} tokens` : ''}
                </span>
              </li>
            ))}
          </ol>
          <ErrorBox error={streamError} waiting={streamWait} />
          <ErrorBox error={act.error} waiting={act.waiting} />
          <form class="composer" onSubmit={sendMessage}>
            <label for="chat-input" class="sr-only">Message</label>
            <textarea id="chat-input" ref={inputRef} rows={2} value={draft} placeholder="Message the agent (Enter sends, Shift+Enter for a new line)"
              onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)}
              onKeyDown={(e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); (e.currentTarget.form as HTMLFormElement).requestSubmit(); } }} />
            {streaming
              ? <button type="button" class="danger" onClick={stop}>Stop</button>
              : <button type="submit" class="primary" disabled={!draft.trim() || streamWait > 0}>Send</button>}
          </form>
          <div class="thread-foot">
            <span class="tokens" aria-live="polite">Tokens used in this conversation: <strong>{tokens}</strong></span>
            {current && <button type="button" class={confirmClear ? 'danger' : 'secondary'} disabled={act.busy || streaming} onClick={clear}>{confirmClear ? 'Confirm: clear all messages' : 'Clear conversation'}</button>}
          </div>
        </section>
      </div>
    </main>
  );
}
