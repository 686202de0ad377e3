import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './styles.css';
import { call } from './api';
import { logout, sessionStore } from './session';
import { reconnectNow, socketStore } from './socket';
import { useStore } from './store';
import { SignIn } from './sign-in';
import { Agents } from './agents';
import { Chat } from './chat';
import { Badge, ErrorBox, shortAddress, toShown, useSecondsLeft, type Shown } from './ui';

export interface ConsoleConfig {
  version: string;
  env: string;
  dev_wallet: boolean;
  ownership: string;
  evm_chain_id: number;
  cosmos_chain_id: string;
  public_url: string;
}

/** Screens by location hash: #/ sign in, #/agents, #/chat/<nft>. No server routes needed. */
function useRoute(): [string, (r: string) => void] {
  const [hash, setHash] = useState(location.hash.slice(1) || '/');
  useEffect(() => {
    const on = () => setHash(location.hash.slice(1) || '/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return [hash, (r) => (location.hash = r)];
}

function App() {
  const [config, setConfig] = useState<ConsoleConfig | undefined>();
  const [error, setError] = useState<Shown | undefined>();
  const { session } = useStore(sessionStore);
  const [route, go] = useRoute();
  const [theme, setTheme] = useState(() => localStorage.getItem('panthers.theme') ?? 'auto');

  useEffect(() => {
    call<ConsoleConfig>('GET', '/v1/console/config', { auth: false }).then(setConfig, (e) => setError(toShown(e)));
  }, []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('panthers.theme', theme);
  }, [theme]);

  const chatNft = /^\/chat\/([A-Za-z0-9_-]{1,78})$/.exec(route)?.[1];
  const screen = !session ? 'signin' : chatNft ? 'chat' : 'agents';
  useEffect(() => {
    // Move focus to the new screen's heading so keyboard and screen-reader users follow along.
    document.querySelector<HTMLElement>('main h1')?.focus();
    document.title = `${screen === 'signin' ? 'Sign in' : screen === 'chat' ? `Chat #${chatNft}` : 'My agents'} · Secret Panthers`;
  }, [screen, chatNft]);

  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand"><img src={document.querySelector<HTMLLinkElement>('link[rel=icon]')?.href} alt="" width={24} height={24} />Secret Panthers</span>
        {config && config.env !== 'production' && <Badge kind="env">{config.env}</Badge>}
        <span class="spacer" />
        {session && <SocketState />}
        {session && (
          <span class="who" title={session.wallet}>
            {shortAddress(session.wallet)} · NFT #{session.nft}
          </span>
        )}
        <label class="theme">
          <span class="sr-only">Theme</span>
          <select value={theme} onChange={(e) => setTheme((e.target as HTMLSelectElement).value)}>
            <option value="auto">Auto theme</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </label>
        {session && <button type="button" class="secondary" onClick={() => void logout().then(() => go('/'))}>Log out</button>}
      </header>
      <ErrorBox error={error} />
      {!config && !error && <p role="status">Loading…</p>}
      {config && screen === 'signin' && <SignIn config={config} wantNft={chatNft} onDone={() => go(chatNft ? `/chat/${chatNft}` : '/agents')} />}
      {config && screen === 'agents' && <Agents onChat={(nft) => go(`/chat/${nft}`)} />}
      {config && screen === 'chat' && session && (session.nft === chatNft
        ? <Chat nft={chatNft!} onBack={() => go('/agents')} />
        : <SwitchNft nft={chatNft!} onBack={() => go('/agents')} />)}
      <footer class="foot muted">Secret Panthers {config?.version} · <a href="/v1/openapi.json">API</a></footer>
    </>
  );
}

/** Sessions are per NFT: chatting with another one needs a sign-in for it. */
function SwitchNft({ nft, onBack }: { nft: string; onBack(): void }) {
  return (
    <main id="main" aria-labelledby="switch-title">
      <h1 id="switch-title" tabIndex={-1}>Sign in for NFT #{nft}</h1>
      <p>This session is for NFT #{sessionStore.get().session?.nft}. To chat with #{nft}, sign in again with it.</p>
      <div class="row">
        <button type="button" class="primary" onClick={() => void logout().then(() => (location.hash = `/chat/${nft}`))}>Sign in for #{nft}</button>
        <button type="button" class="secondary" onClick={onBack}>Back</button>
      </div>
    </main>
  );
}

function SocketState() {
  const s = useStore(socketStore);
  const left = useSecondsLeft(s.retryAt);
  const label = s.state === 'open' ? 'Live' : s.state === 'reconnecting' ? (left ? `Reconnecting in ${left} s` : 'Reconnecting…') : s.state === 'connecting' ? 'Connecting…' : 'Offline';
  return (
    <span class={`sock sock-${s.state}`} role="status" aria-live="polite" data-state={s.state}>
      <span class="dot" aria-hidden="true" />
      {label}
      {s.state === 'reconnecting' && <button type="button" class="link" onClick={reconnectNow}>now</button>}
    </span>
  );
}

render(<App />, document.getElementById('app')!);
