import { useEffect, useState } from 'preact/hooks';
import { call } from './api';
import { startSession, sessionStore, type VerifyAnswer } from './session';
import { connect, discoverWallets, walletErrorMessage, type ConnectedWallet, type WalletOption } from './wallets';
import { Badge, ErrorBox, shortAddress, useAction } from './ui';
import type { ConsoleConfig } from './main';
import { useStore } from './store';

interface Challenge {
  message: string;
  nonce: string;
  expires_at: string;
}

interface NftPage {
  enumerable: boolean;
  data: { nft_token_id: string }[];
  pagination: { total: number; has_more: boolean };
}

/**
 * Sign in: pick a wallet, connect it, pick the NFT (listed when the server can list them,
 * else typed), read the server's message, sign it in the wallet, and open the session.
 */
export function SignIn({ config, wantNft, onDone }: { config: ConsoleConfig; wantNft?: string; onDone(): void }) {
  const { ended } = useStore(sessionStore);
  const [wallets, setWallets] = useState<WalletOption[]>([]);
  const [wallet, setWallet] = useState<ConnectedWallet | undefined>();
  const [nfts, setNfts] = useState<NftPage | undefined>();
  const [nft, setNft] = useState(wantNft ?? '');
  const [challenge, setChallenge] = useState<Challenge | undefined>();
  const act = useAction();

  useEffect(() => discoverWallets({ devWallet: config.dev_wallet }, setWallets), [config.dev_wallet]);

  async function choose(option: WalletOption) {
    await act.run(async () => {
      let w: ConnectedWallet;
      try {
        w = await connect(option, config.cosmos_chain_id);
      } catch (e) {
        throw new Error(walletErrorMessage(e));
      }
      setWallet(w);
      setChallenge(undefined);
      const page = await call<NftPage>('GET', '/v1/nfts', { query: { owner: w.address, limit: 100 }, auth: false });
      setNfts(page);
      if (!wantNft && page.data.length > 0) setNft(page.data[0]!.nft_token_id);
    });
  }

  async function getChallenge(ev: Event) {
    ev.preventDefault();
    if (!wallet) return;
    await act.run(async () => {
      setChallenge(await call<Challenge>('POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: nft.trim() }, auth: false }));
    });
  }

  async function sign() {
    if (!wallet || !challenge) return;
    await act.run(async () => {
      let signed: { signature: string; public_key?: string };
      try {
        signed = await wallet.sign(challenge.message);
      } catch (e) {
        throw new Error(walletErrorMessage(e));
      }
      const v = await call<VerifyAnswer>('POST', '/v1/auth/verify', {
        body: { wallet_address: wallet.address, nft_token_id: nft.trim(), signature: signed.signature, message: challenge.message, public_key: signed.public_key },
        auth: false,
      });
      startSession(v, wallet.address, nft.trim(), wallet.option.name);
      onDone();
    });
  }

  const domain = challenge ? /^(\S+) wants you to sign in/.exec(challenge.message)?.[1] : undefined;
  const domainMismatch = domain !== undefined && domain !== location.host;

  return (
    <main id="main" class="signin" aria-labelledby="signin-title">
      <h1 tabIndex={-1} id="signin-title">Sign in with your wallet</h1>
      <p class="lead">Sign a one-time message with the wallet that holds your NFT. Nothing is sent on chain and nothing costs gas.</p>
      {ended && (
        <div class="notice" role="status">
          Your session ended: <strong class="code">{ended.code}</strong> {ended.message}
        </div>
      )}

      <section aria-labelledby="wallets-title" class="card">
        <h2 id="wallets-title">1. Wallet</h2>
        {wallets.length === 0 && <p>No wallet found in this browser. Install an Ethereum wallet (MetaMask, Rabby, …) or Keplr for Secret Network.</p>}
        <ul class="wallets">
          {wallets.map((w) => (
            <li key={w.id}>
              <button type="button" class={`wallet ${wallet?.option.id === w.id ? 'chosen' : ''} ${w.kind === 'dev' ? 'dev' : ''}`} disabled={act.blocked} onClick={() => choose(w)} aria-pressed={wallet?.option.id === w.id}>
                {w.icon ? <img src={w.icon} alt="" width={28} height={28} /> : <span class="wallet-glyph" aria-hidden="true">{w.kind === 'keplr' ? 'K' : w.kind === 'dev' ? '⚠' : 'Ξ'}</span>}
                <span>{w.name}</span>
                {w.kind === 'dev' && <Badge kind="dev">development only</Badge>}
              </button>
            </li>
          ))}
        </ul>
        {wallet?.option.kind === 'dev' && (
          <p class="dev-note" role="note">
            <Badge kind="dev">DEV WALLET</Badge> The key lives in this browser's storage, unencrypted: for trying the console on a development server only.
            Give it an NFT with <code>panthers nft assign &lt;token_id&gt; {wallet.address}</code>.
            <button type="button" class="link" onClick={() => { wallet.forget?.(); setWallet(undefined); setNfts(undefined); }}>Forget this key</button>
          </p>
        )}
        {wallet && <p>Connected: <code class="addr" title={wallet.address}>{wallet.address}</code></p>}
      </section>

      {wallet && (
        <section aria-labelledby="nft-title" class="card">
          <h2 id="nft-title">2. NFT</h2>
          <form onSubmit={getChallenge}>
            {nfts?.enumerable && nfts.data.length > 0 && (
              <fieldset>
                <legend>NFTs this wallet holds</legend>
                <div class="nft-choices">
                  {nfts.data.map((n) => (
                    <label key={n.nft_token_id} class="choice">
                      <input type="radio" name="nft" value={n.nft_token_id} checked={nft === n.nft_token_id} onChange={() => setNft(n.nft_token_id)} />
                      #{n.nft_token_id}
                    </label>
                  ))}
                </div>
              </fieldset>
            )}
            {nfts?.enumerable && nfts.data.length === 0 && <p>This wallet holds no NFT known to this server. Type a token id if you hold one elsewhere.</p>}
            {nfts && !nfts.enumerable && <p>This server cannot list NFTs by holder: type your token id.</p>}
            <label for="nft-id">Token id</label>
            <div class="row">
              <input id="nft-id" name="nft_token_id" required pattern="[A-Za-z0-9_\-]{1,78}" value={nft} onInput={(e) => setNft((e.target as HTMLInputElement).value)} autocomplete="off" inputMode="text" />
              <button type="submit" disabled={act.blocked || !nft.trim()}>Get sign-in message</button>
            </div>
          </form>
        </section>
      )}

      {challenge && wallet && (
        <section aria-labelledby="msg-title" class="card">
          <h2 id="msg-title">3. Read, then sign</h2>
          <p>Your wallet will ask you to sign exactly this message (valid until {new Date(challenge.expires_at).toLocaleTimeString()}):</p>
          <pre class="siwe" tabIndex={0} aria-label="Message to sign">{challenge.message}</pre>
          {domainMismatch && (
            <p class="warn" role="alert">The message names <strong>{domain}</strong> but this page is <strong>{location.host}</strong>: your wallet may warn you. Open the console at the server's public URL ({config.public_url}).</p>
          )}
          <div class="row">
            <button type="button" class="primary" disabled={act.blocked} onClick={sign}>Sign with {wallet.option.name}</button>
            <button type="button" class="secondary" onClick={() => setChallenge(undefined)}>Cancel</button>
          </div>
        </section>
      )}

      <ErrorBox error={act.error} waiting={act.waiting} />
      {act.busy && <p class="busy" role="status">Working…</p>}
      {wallet && <p class="muted">Signing in as {shortAddress(wallet.address)} ({wallet.option.name}).</p>}
    </main>
  );
}
