/**
 * Wallets the console can sign in with: EIP-1193 providers found by EIP-6963 discovery (each
 * with its announced name and icon), `window.ethereum` when nothing announces, Keplr for
 * secret1 addresses, and in development only a key kept in the browser.
 */

export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
  on?(event: string, fn: (...a: unknown[]) => void): void;
  removeListener?(event: string, fn: (...a: unknown[]) => void): void;
}

export interface KeplrLike {
  enable(chainId: string): Promise<void>;
  getKey(chainId: string): Promise<{ bech32Address: string; name?: string }>;
  signArbitrary(chainId: string, signer: string, data: string): Promise<{ signature: string; pub_key: { type: string; value: string } }>;
}

export type WalletKind = 'evm' | 'keplr' | 'dev';

export interface WalletOption {
  id: string;
  name: string;
  /** a data: image URI (EIP-6963 says so; anything else is dropped) */
  icon?: string;
  kind: WalletKind;
  provider?: Eip1193Provider;
}

declare global {
  interface Window {
    ethereum?: Eip1193Provider;
    keplr?: KeplrLike;
  }
}

/** The signing side of a chosen wallet, once connected. */
export interface ConnectedWallet {
  option: WalletOption;
  address: string;
  sign(message: string): Promise<{ signature: string; public_key?: string }>;
  /** Forget a dev wallet's key (dev only). */
  forget?(): void;
}

/** Listens for EIP-6963 announcements; calls back with the full list each time it changes. */
export function discoverWallets(opts: { devWallet: boolean }, onChange: (list: WalletOption[]) => void): () => void {
  const announced = new Map<string, WalletOption>();
  const emit = () => {
    const list = [...announced.values()];
    if (list.length === 0 && window.ethereum) {
      list.push({ id: 'window.ethereum', name: 'Browser wallet', kind: 'evm', provider: window.ethereum });
    }
    if (window.keplr) list.push({ id: 'keplr', name: 'Keplr (Secret Network)', kind: 'keplr' });
    if (opts.devWallet) list.push({ id: 'dev', name: 'Dev wallet', kind: 'dev' });
    onChange(list);
  };
  const onAnnounce = (ev: Event) => {
    const d = (ev as CustomEvent).detail as { info?: { uuid?: unknown; name?: unknown; icon?: unknown; rdns?: unknown }; provider?: Eip1193Provider } | undefined;
    if (!d?.info || !d.provider || typeof d.provider.request !== 'function') return;
    const uuid = String(d.info.uuid ?? d.info.rdns ?? d.info.name);
    const icon = typeof d.info.icon === 'string' && /^data:image\/(svg\+xml|png|webp|jpeg|gif)[;,]/.test(d.info.icon) ? d.info.icon : undefined;
    announced.set(uuid, { id: uuid, name: String(d.info.name ?? 'Wallet').slice(0, 64), icon, kind: 'evm', provider: d.provider });
    emit();
  };
  window.addEventListener('eip6963:announceProvider', onAnnounce);
  window.dispatchEvent(new Event('eip6963:requestProvider'));
  emit();
  // Keplr and window.ethereum may be injected a moment after the page starts.
  const late = setTimeout(emit, 400);
  return () => {
    clearTimeout(late);
    window.removeEventListener('eip6963:announceProvider', onAnnounce);
  };
}

export async function connect(option: WalletOption, cosmosChainId: string): Promise<ConnectedWallet> {
  if (option.kind === 'evm') {
    const p = option.provider!;
    const accounts = (await p.request({ method: 'eth_requestAccounts' })) as string[];
    const address = accounts?.[0];
    if (typeof address !== 'string') throw new WalletError('The wallet shared no account');
    return {
      option,
      address,
      async sign(message) {
        const signature = (await p.request({ method: 'personal_sign', params: [utf8Hex(message), address] })) as string;
        return { signature };
      },
    };
  }
  if (option.kind === 'keplr') {
    const k = window.keplr;
    if (!k) throw new WalletError('Keplr is not installed in this browser');
    await k.enable(cosmosChainId);
    const key = await k.getKey(cosmosChainId);
    return {
      option,
      address: key.bech32Address,
      async sign(message) {
        const r = await k.signArbitrary(cosmosChainId, key.bech32Address, message);
        return { signature: r.signature, public_key: r.pub_key.value };
      },
    };
  }
  const { openDevWallet } = await import('./dev-wallet');
  const w = openDevWallet();
  return { option, address: w.address, sign: async (m) => ({ signature: w.sign(m) }), forget: () => w.forget() };
}

/** A wallet said no (the user rejected, or it failed): shown as the wallet's own words. */
export class WalletError extends Error {}

export function walletErrorMessage(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (code === 4001) return 'You rejected the request in your wallet';
  if (code === 4100) return 'The wallet has not authorized this site';
  const m = (e as { message?: unknown })?.message;
  return typeof m === 'string' && m ? m : 'The wallet failed';
}

/** personal_sign takes the message as 0x-hex of its UTF-8 bytes (MetaMask also accepts text). */
function utf8Hex(s: string): string {
  let h = '0x';
  for (const b of new TextEncoder().encode(s)) h += b.toString(16).padStart(2, '0');
  return h;
}
