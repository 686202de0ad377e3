import fs from 'node:fs';
import path from 'node:path';
import { Wallet } from 'ethers';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './server.js';
import { signAdr036 } from '../../src/auth/cosmos-signature.js';
import type { CosmosTestWallet, EvmTestWallet } from './wallets.js';

/**
 * A real browser for the console tests: Debian's Chromium (/usr/bin/chromium, installed by
 * .ci/run) driven by playwright-core, with the flags that work on this machine's closed network
 * (reference/browser.md, .library machines/node.md). Playwright gives each launch a fresh,
 * empty profile directory.
 */
export const CHROMIUM = process.env.PANTHERS_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'console');

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does it)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    ],
  });
}

export interface InjectedEvm {
  wallet: EvmTestWallet;
  name: string;
  uuid: string;
  rdns: string;
  /** data:image/svg+xml icon, as EIP-6963 requires */
  icon: string;
}

/**
 * Injects, before any page script runs, wallets a page cannot tell from real extensions:
 * EIP-1193 providers announced over EIP-6963 (eip6963:announceProvider on
 * eip6963:requestProvider, frozen { info, provider } as MetaMask's @metamask/providers does)
 * whose personal_sign is an EIP-191 signature made in Node by ethers with a real secp256k1 key,
 * and a Keplr stand-in (enable / getKey / signArbitrary) whose signature is a real ADR-036
 * signature (the sign doc of cosmjs `makeADR36AminoSignDoc`, checked in reference/wallet-auth.md).
 */
export async function injectWallets(context: BrowserContext, evm: InjectedEvm[], keplr?: CosmosTestWallet): Promise<void> {
  const keys = new Map(evm.map((e) => [e.wallet.address.toLowerCase(), new Wallet(e.wallet.privateKey)]));
  await context.exposeBinding('__testPersonalSign', async (_src, address: string, data: string) => {
    const w = keys.get(address.toLowerCase());
    if (!w) throw new Error(`no key for ${address}`);
    // personal_sign's data is 0x-hex of the bytes (MetaMask also takes text).
    const bytes = /^0x[0-9a-fA-F]*$/.test(data) ? Buffer.from(data.slice(2), 'hex') : Buffer.from(data, 'utf8');
    return w.signMessage(bytes);
  });
  if (keplr) {
    await context.exposeBinding('__testKeplrSign', (_src, signer: string, data: string) => {
      if (signer !== keplr.address) throw new Error(`Keplr has no key for ${signer}`);
      return signAdr036(signer, data, keplr.privateKey);
    });
  }
  const wallets = evm.map((e) => ({ address: e.wallet.address, name: e.name, uuid: e.uuid, rdns: e.rdns, icon: e.icon }));
  const cosmos = keplr ? { address: keplr.address, publicKey: keplr.publicKey } : null;
  await context.addInitScript(({ wallets, cosmos }) => {
    const w = globalThis as unknown as Record<string, any>;
    for (const info of wallets) {
      const provider = {
        async request({ method, params }: { method: string; params?: unknown[] }) {
          switch (method) {
            case 'eth_requestAccounts':
            case 'eth_accounts':
              return [info.address.toLowerCase()];
            case 'eth_chainId':
              return '0x1';
            case 'personal_sign':
              return w.__testPersonalSign((params as string[])[1], (params as string[])[0]);
            default:
              throw Object.assign(new Error(`The test wallet does not support ${method}`), { code: 4200 });
          }
        },
        on() {},
        removeListener() {},
      };
      const detail = Object.freeze({ info: Object.freeze({ uuid: info.uuid, name: info.name, icon: info.icon, rdns: info.rdns }), provider });
      const announce = () => w.dispatchEvent(new w.CustomEvent('eip6963:announceProvider', { detail }));
      w.addEventListener('eip6963:requestProvider', announce);
      announce();
    }
    if (cosmos) {
      w.keplr = {
        async enable(chainId: string) {
          if (chainId !== 'secret-4') throw new Error(`unknown chain ${chainId}`);
        },
        async getKey() {
          const raw = atob(cosmos.publicKey);
          const pubKey = new Uint8Array(raw.length);
          for (let i = 0; i < raw.length; i++) pubKey[i] = raw.charCodeAt(i);
          return { name: 'test', algo: 'secp256k1', pubKey, address: new Uint8Array(20), bech32Address: cosmos.address, isNanoLedger: false };
        },
        async signArbitrary(_chainId: string, signer: string, data: string) {
          return w.__testKeplrSign(signer, data);
        },
      };
    }
  }, { wallets, cosmos });
}

/** A small icon as a data: URI (what wallets announce). */
export function svgIcon(color: string): string {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="${color}"/></svg>`;
  return 'data:image/svg+xml;base64,' + Buffer.from(svg).toString('base64');
}

/**
 * Watches a page for console errors, uncaught exceptions, failed requests and HTTP error
 * answers. A test declares the failures it provokes with `expect(pattern)`; anything else
 * is reported by `unexpected()`.
 */
export class PageWatch {
  private readonly problems: string[] = [];
  private allowed: RegExp[] = [];

  constructor(page: Page) {
    page.on('console', (m) => {
      if (m.type() === 'error') this.note(`console error: ${m.text()} @ ${m.location().url}`);
    });
    page.on('pageerror', (e) => this.note(`page error: ${e.message}`));
    const answered = new WeakSet<object>();
    page.on('requestfailed', (r) => {
      // Chromium reports a response read through a ReadableStream reader as net::ERR_ABORTED
      // once the body is done when it was sent with Cache-Control: no-store (as every API
      // answer is): reproduced with a 30-line net server, headers otherwise equal. A request
      // that got its (successful) answer and was then closed by the page is not a failure.
      if (r.failure()?.errorText === 'net::ERR_ABORTED' && answered.has(r)) return;
      this.note(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
    });
    page.on('response', (r) => {
      if (r.status() < 400) answered.add(r.request());
      else this.note(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    });
  }

  private note(s: string): void {
    if (!this.allowed.some((re) => re.test(s))) this.problems.push(s);
  }

  /** Allows problems matching `re` until `done()` is called on the result. */
  expect(...res: RegExp[]): { done(): void } {
    this.allowed.push(...res);
    return { done: () => void (this.allowed = this.allowed.filter((r) => !res.includes(r))) };
  }

  unexpected(): string[] {
    return this.problems.splice(0);
  }
}

/** Saves a screenshot of the page at desktop width and at a phone's (390 x 844). */
export async function screens(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const size = page.viewportSize() ?? { width: 1280, height: 860 };
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(50);
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}
