import { useEffect, useState } from 'preact/hooks';
import { call } from './api';
import { onFrame, subscribeDeployment, unsubscribeDeployment } from './socket';
import { sessionStore } from './session';
import { useStore } from './store';
import { Badge, ErrorBox, useAction } from './ui';

export interface Deployment {
  deployment_id: string;
  nft_token_id: string;
  status: string;
  provider: string;
  progress: number;
  endpoint_url: string | null;
  created_at?: string;
  error?: string | null;
  message?: string;
  resources?: { cpu: number; memory_mb: number; disk_mb: number; gpu: number };
  agent?: { name: string; model: string };
}

interface Options {
  providers: { name: string; configured: boolean; missing: string | null; estimated_time: number }[];
  models: { id: string; backend: string; default: boolean }[];
  resources: { defaults: Record<Res, number>; max: Record<Res, number> };
}
type Res = 'cpu' | 'memory_mb' | 'disk_mb' | 'gpu';

interface ListAnswer {
  deployments: Deployment[];
  total: number;
  pagination: { total: number; limit: number; offset: number; has_more: boolean };
}

const STATUSES = ['pending', 'deploying', 'running', 'stopping', 'stopped', 'failed'];
const ACTIVE = new Set(['pending', 'deploying', 'running', 'stopping']);
const PAGE = 10;

/** My agents: the wallet's NFTs with their live deployment state, deploy and stop, and the list. */
export function Agents({ onChat }: { onChat(nft: string): void }) {
  const { session } = useStore(sessionStore);
  const [nfts, setNfts] = useState<string[]>([]);
  const [enumerable, setEnumerable] = useState(true);
  const [live, setLive] = useState<Record<string, Deployment | null>>({});
  const [options, setOptions] = useState<Options | undefined>();
  const [deployFor, setDeployFor] = useState<string | undefined>();
  const [typed, setTyped] = useState('');
  const [listKey, setListKey] = useState(0);
  const load = useAction();

  useEffect(() => {
    if (!session) return;
    void load.run(async () => {
      const [page, opts] = await Promise.all([
        call<{ enumerable: boolean; data: { nft_token_id: string }[] }>('GET', '/v1/nfts', { query: { owner: session.wallet, limit: 100 } }),
        call<Options>('GET', '/v1/providers'),
      ]);
      const ids = page.data.map((d) => d.nft_token_id);
      if (!ids.includes(session.nft)) ids.unshift(session.nft);
      setEnumerable(page.enumerable);
      setOptions(opts);
      setNfts(ids);
      // The socket's `subscribed` frames bring each NFT's state; this fills the cards even
      // while it is still connecting (or down): the latest deployment of each NFT.
      const recent = await call<ListAnswer>('GET', '/v1/deployments', { query: { limit: 100, sort: 'created_at', order: 'desc' } });
      setLive((m) => {
        const next = { ...m };
        for (const d of recent.deployments) if (next[d.nft_token_id] === undefined) next[d.nft_token_id] = d;
        if (!recent.pagination.has_more) for (const id of ids) if (next[id] === undefined) next[id] = null;
        return next;
      });
    });
  }, [session?.sessionId]);

  // Live state: every shown NFT is subscribed on the socket (re-sent after a reconnect).
  useEffect(() => {
    for (const n of nfts) subscribeDeployment(n);
    return () => {
      for (const n of nfts) unsubscribeDeployment(n);
    };
  }, [nfts.join(',')]);

  useEffect(() => onFrame((f) => {
    if (f.type === 'subscribed' && f.channel === 'deployment') {
      setLive((m) => ({ ...m, [f.nft_token_id as string]: (f.deployment as Deployment | null) ?? null }));
    } else if (f.type === 'deployment_status') {
      const nft = f.nft_token_id as string;
      setLive((m) => ({ ...m, [nft]: { ...(m[nft] ?? {}), ...(f as unknown as Deployment) } }));
      if (f.status === 'running' || f.status === 'stopped' || f.status === 'failed') setListKey((k) => k + 1);
    }
  }), []);

  if (!session) return null;

  function addTyped(ev: Event) {
    ev.preventDefault();
    const id = typed.trim();
    if (id && !nfts.includes(id)) setNfts([...nfts, id]);
    setTyped('');
  }

  return (
    <main id="main" aria-labelledby="agents-title">
      <h1 tabIndex={-1} id="agents-title">My agents</h1>
      <ErrorBox error={load.error} waiting={load.waiting} />
      {load.busy && nfts.length === 0 && <p role="status">Loading your NFTs…</p>}
      <ul class="agents" aria-label="Your NFTs">
        {nfts.map((n) => (
          <NftCard key={n} nft={n} d={live[n]} sessionNft={session.nft} options={options}
            open={deployFor === n} onOpen={() => setDeployFor(deployFor === n ? undefined : n)} onChat={() => onChat(n)}
            onChanged={() => setListKey((k) => k + 1)} />
        ))}
      </ul>
      <form class="row add-nft" onSubmit={addTyped}>
        <label for="add-nft">{enumerable ? 'Another token id' : 'Token id (this server cannot list NFTs by holder)'}</label>
        <input id="add-nft" value={typed} pattern="[A-Za-z0-9_\-]{1,78}" onInput={(e) => setTyped((e.target as HTMLInputElement).value)} autocomplete="off" />
        <button type="submit" class="secondary" disabled={!typed.trim()}>Add</button>
      </form>
      <DeploymentList refreshKey={listKey} />
    </main>
  );
}

function NftCard(props: {
  nft: string; d: Deployment | null | undefined; sessionNft: string; options?: Options; open: boolean;
  onOpen(): void; onChat(): void; onChanged(): void;
}) {
  const { nft, d } = props;
  const act = useAction();
  const status = d?.status ?? (d === null ? 'not deployed' : 'loading');
  const active = d ? ACTIVE.has(d.status) : false;

  async function stop() {
    await act.run(async () => {
      await call('DELETE', `/v1/deployments/${encodeURIComponent(nft)}`);
      props.onChanged();
    });
  }

  return (
    <li class="card agent" data-nft={nft} data-status={status}>
      <div class="agent-head">
        <h2>NFT #{nft}</h2>
        <Badge kind={d?.status ?? 'none'}>{status}</Badge>
        {d?.provider && <span class="muted">on {d.provider}</span>}
      </div>
      {d && (d.status === 'pending' || d.status === 'deploying' || d.status === 'stopping' || d.status === 'running') && (
        <div class="progress-row">
          <progress max={100} value={d.progress ?? 0} aria-label={`Deployment progress of NFT ${nft}`} aria-valuetext={`${d.progress ?? 0}%`} />
          <span class="pct" aria-hidden="true">{d.progress ?? 0}%</span>
        </div>
      )}
      {d?.message && <p class="muted status-message" aria-live="polite">{d.message}</p>}
      {d?.error && <p class="error-text">{d.error}</p>}
      <div class="row">
        {!active && <button type="button" onClick={props.onOpen} aria-expanded={props.open}>{props.open ? 'Close' : d ? 'Deploy again' : 'Deploy'}</button>}
        {active && <button type="button" class="secondary" disabled={act.blocked || d?.status === 'stopping'} onClick={stop}>Stop</button>}
        {d?.status === 'running' && (props.sessionNft === nft
          ? <button type="button" class="primary" onClick={props.onChat}>Chat</button>
          : <button type="button" class="secondary" onClick={props.onChat} title="Sessions are per NFT: sign in again for this one">Sign in to chat</button>)}
      </div>
      <ErrorBox error={act.error} waiting={act.waiting} />
      {props.open && !active && props.options && <DeployForm nft={nft} options={props.options} onDone={() => { props.onOpen(); props.onChanged(); }} />}
    </li>
  );
}

function DeployForm({ nft, options, onDone }: { nft: string; options: Options; onDone(): void }) {
  const firstConfigured = options.providers.find((p) => p.configured)?.name ?? 'local';
  const [provider, setProvider] = useState(firstConfigured);
  const [res, setRes] = useState<Record<Res, string>>({ cpu: '', memory_mb: '', disk_mb: '', gpu: '' });
  const [name, setName] = useState('');
  const [prompt, setPrompt] = useState('');
  const [model, setModel] = useState('');
  const act = useAction();
  const id = (s: string) => `deploy-${nft}-${s}`;

  async function submit(ev: Event) {
    ev.preventDefault();
    const resources: Partial<Record<Res, number>> = {};
    for (const k of Object.keys(res) as Res[]) if (res[k].trim() !== '') resources[k] = Number(res[k]);
    const agent: Record<string, string> = {};
    if (name.trim()) agent.name = name.trim();
    if (prompt.trim()) agent.system_prompt = prompt;
    if (model) agent.model = model;
    await act.run(async () => {
      await call('POST', '/v1/deployments', {
        body: { nft_token_id: nft, provider, ...(Object.keys(resources).length ? { resources } : {}), ...(Object.keys(agent).length ? { agent } : {}) },
      });
      onDone();
    });
  }

  const labels: Record<Res, string> = { cpu: 'CPU (cores)', memory_mb: 'Memory (MB)', disk_mb: 'Disk (MB)', gpu: 'GPUs' };
  return (
    <form class="deploy" onSubmit={submit} aria-label={`Deploy NFT ${nft}`}>
      <fieldset>
        <legend>Provider</legend>
        {options.providers.map((p) => (
          <label key={p.name} class={`choice ${p.configured ? '' : 'disabled'}`}>
            <input type="radio" name={id('provider')} value={p.name} checked={provider === p.name} disabled={!p.configured} onChange={() => setProvider(p.name)} />
            {p.name} {p.configured ? <span class="muted">(~{p.estimated_time} s)</span> : <span class="muted">— not configured: {p.missing}</span>}
          </label>
        ))}
      </fieldset>
      <details>
        <summary>Resources (optional)</summary>
        <div class="grid">
          {(Object.keys(labels) as Res[]).map((k) => (
            <label key={k} for={id(k)}>
              {labels[k]}
              <input id={id(k)} type="number" inputMode="decimal" min={k === 'gpu' ? 0 : k === 'cpu' ? 0.1 : 64} max={options.resources.max[k]} step={k === 'cpu' ? 0.1 : 1}
                placeholder={String(options.resources.defaults[k])} value={res[k]} onInput={(e) => setRes({ ...res, [k]: (e.target as HTMLInputElement).value })} />
            </label>
          ))}
        </div>
      </details>
      <details>
        <summary>Character (optional)</summary>
        <label for={id('name')}>Name</label>
        <input id={id('name')} maxLength={64} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <label for={id('prompt')}>System prompt</label>
        <textarea id={id('prompt')} maxLength={8000} rows={3} value={prompt} onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)} />
        <label for={id('model')}>Model</label>
        <select id={id('model')} value={model} onChange={(e) => setModel((e.target as HTMLSelectElement).value)}>
          <option value="">Server default</option>
          {options.models.map((m) => <option key={m.id} value={m.id}>{m.id}{m.default ? ' (default)' : ''}</option>)}
        </select>
      </details>
      <div class="row">
        <button type="submit" class="primary" disabled={act.blocked}>Deploy on {provider}</button>
      </div>
      <ErrorBox error={act.error} waiting={act.waiting} />
    </form>
  );
}

/** GET /v1/deployments with the spec's filters (status, provider), sort and pagination. */
function DeploymentList({ refreshKey }: { refreshKey: number }) {
  const [status, setStatus] = useState('');
  const [provider, setProvider] = useState('');
  const [sort, setSort] = useState('created_at');
  const [order, setOrder] = useState('desc');
  const [offset, setOffset] = useState(0);
  const [data, setData] = useState<ListAnswer | undefined>();
  const act = useAction();

  useEffect(() => {
    void act.run(async () => {
      setData(await call<ListAnswer>('GET', '/v1/deployments', { query: { status, provider, sort, order, limit: PAGE, offset } }));
    });
  }, [status, provider, sort, order, offset, refreshKey]);

  const total = data?.pagination.total ?? 0;
  return (
    <section class="card" aria-labelledby="list-title">
      <h2 id="list-title">Deployments</h2>
      <div class="filters">
        <label>Status
          <select value={status} onChange={(e) => { setStatus((e.target as HTMLSelectElement).value); setOffset(0); }}>
            <option value="">any</option>
            {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>Provider
          <select value={provider} onChange={(e) => { setProvider((e.target as HTMLSelectElement).value); setOffset(0); }}>
            <option value="">any</option>
            {['local', 'akash', 'secret_vm'].map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>Sort
          <select value={sort} onChange={(e) => setSort((e.target as HTMLSelectElement).value)}>
            <option value="created_at">created</option>
            <option value="status">status</option>
            <option value="nft_token_id">NFT</option>
          </select>
        </label>
        <label>Order
          <select value={order} onChange={(e) => setOrder((e.target as HTMLSelectElement).value)}>
            <option value="desc">newest first</option>
            <option value="asc">oldest first</option>
          </select>
        </label>
      </div>
      <ErrorBox error={act.error} waiting={act.waiting} />
      {data && data.deployments.length === 0 && <p class="muted">No deployments match.</p>}
      {data && data.deployments.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Your deployments</caption>
            <thead><tr><th scope="col">NFT</th><th scope="col">Status</th><th scope="col">Provider</th><th scope="col">Created</th><th scope="col">Endpoint</th></tr></thead>
            <tbody>
              {data.deployments.map((d) => (
                <tr key={d.deployment_id}>
                  <td>#{d.nft_token_id}</td>
                  <td><Badge kind={d.status}>{d.status}</Badge></td>
                  <td>{d.provider}</td>
                  <td>{d.created_at ? new Date(d.created_at).toLocaleString() : ''}</td>
                  <td class="endpoint">{d.endpoint_url ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Deployment pages">
        <button type="button" class="secondary" disabled={offset === 0 || act.busy} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Previous</button>
        <span>{total === 0 ? '0' : `${offset + 1}–${Math.min(total, offset + PAGE)}`} of {total}</span>
        <button type="button" class="secondary" disabled={!data?.pagination.has_more || act.busy} onClick={() => setOffset(offset + PAGE)}>Next</button>
      </nav>
    </section>
  );
}
