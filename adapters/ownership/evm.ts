import { ApiError } from '../../src/errors.js';
import type { OwnedPage, OwnershipVerifier } from '../../src/auth/ownership.js';

export interface EvmOwnershipOptions {
  rpcUrl: string;
  contract: string;
  chainId: number;
  timeoutMs?: number;
}

/** ownerOf(uint256) */
const OWNER_OF = '0x6352211e';
/** ERC-165 supportsInterface(bytes4), balanceOf(address), and ERC-721 Enumerable's tokenOfOwnerByIndex(address,uint256) */
const SUPPORTS_INTERFACE = '0x01ffc9a7';
const ERC721_ENUMERABLE_ID = '780e9d63';
const BALANCE_OF = '0x70a08231';
const TOKEN_OF_OWNER_BY_INDEX = '0x2f745c59';
const UINT256_LIMIT = 2n ** 256n;

/**
 * ERC-721 `ownerOf(tokenId)` over JSON-RPC `eth_call` at "latest". The RPC's chain id is checked
 * (eth_chainId) before the first answer is believed, so a misconfigured URL cannot answer for
 * another chain. A reverting call (the token does not exist: JSON-RPC error code 3, or a message
 * saying "revert") means no owner; every other failure is SERVICE_UNAVAILABLE, never "no owner".
 */
export class EvmOwnership implements OwnershipVerifier {
  readonly kind = 'evm';
  private chainCheck: Promise<void> | undefined;
  private enumerable: Promise<boolean> | undefined;
  private nextId = 1;

  constructor(private readonly opts: EvmOwnershipOptions) {}

  async ownerOf(nftTokenId: string): Promise<string | undefined> {
    if (!/^\d{1,78}$/.test(nftTokenId)) return undefined; // ERC-721 ids are uint256
    const id = BigInt(nftTokenId);
    if (id >= UINT256_LIMIT) return undefined;
    await this.checkChain();
    const data = OWNER_OF + id.toString(16).padStart(64, '0');
    let result: unknown;
    try {
      result = await this.rpc('eth_call', [{ to: this.opts.contract, data }, 'latest']);
    } catch (e) {
      if (e instanceof RpcError && e.isRevert) return undefined; // no such token
      throw e instanceof RpcError ? unavailable(`The EVM RPC failed eth_call: ${e.message}`, { rpc_code: e.code }) : e;
    }
    if (typeof result !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(result)) {
      // "0x" is what a call to an address without code returns: the contract is misconfigured.
      throw unavailable('The EVM RPC returned a malformed ownerOf result (is PANTHERS_NFT_CONTRACT a contract on this chain?)');
    }
    if (!/^0x0{24}/.test(result)) throw unavailable('The EVM RPC returned an ownerOf word that is not an address');
    const owner = '0x' + result.slice(-40).toLowerCase();
    return /^0x0{40}$/.test(owner) ? undefined : owner;
  }

  /**
   * The wallet's tokens when the contract says (ERC-165) it implements ERC-721 Enumerable:
   * balanceOf, then tokenOfOwnerByIndex for the page asked (at most `limit` calls). Undefined
   * when it does not (or the probe reverts): the console then asks for a token id.
   */
  async listOwned(wallet: string, limit: number, offset: number): Promise<OwnedPage | undefined> {
    if (!/^0x[0-9a-fA-F]{40}$/.test(wallet)) return undefined;
    await this.checkChain();
    this.enumerable ??= this.call(SUPPORTS_INTERFACE + ERC721_ENUMERABLE_ID.padEnd(64, '0'))
      .then((r) => r !== undefined && /^0x0*1$/.test(r))
      .catch((e) => {
        this.enumerable = undefined;
        throw e;
      });
    if (!(await this.enumerable)) return undefined;
    const owner = wallet.slice(2).toLowerCase().padStart(64, '0');
    const balance = await this.call(BALANCE_OF + owner);
    if (balance === undefined) return undefined;
    const total = Number(BigInt(balance));
    const tokens: string[] = [];
    for (let i = offset; i < Math.min(total, offset + limit); i++) {
      const t = await this.call(TOKEN_OF_OWNER_BY_INDEX + owner + i.toString(16).padStart(64, '0'));
      if (t === undefined) break; // the balance moved while we listed
      tokens.push(BigInt(t).toString());
    }
    return { tokens, total };
  }

  /** eth_call returning one 32-byte word, or undefined when the call reverts. */
  private async call(data: string): Promise<string | undefined> {
    let result: unknown;
    try {
      result = await this.rpc('eth_call', [{ to: this.opts.contract, data }, 'latest']);
    } catch (e) {
      if (e instanceof RpcError && e.isRevert) return undefined;
      throw e instanceof RpcError ? unavailable(`The EVM RPC failed eth_call: ${e.message}`, { rpc_code: e.code }) : e;
    }
    if (typeof result !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(result)) return undefined;
    return result;
  }

  /** One eth_chainId check shared by concurrent callers; retried after a failure. */
  private checkChain(): Promise<void> {
    this.chainCheck ??= (async () => {
      let chain: unknown;
      try {
        chain = await this.rpc('eth_chainId', []);
      } catch (e) {
        throw e instanceof RpcError ? unavailable(`The EVM RPC failed eth_chainId: ${e.message}`, { rpc_code: e.code }) : e;
      }
      if (typeof chain !== 'string' || !/^0x[0-9a-fA-F]+$/.test(chain) || BigInt(chain) !== BigInt(this.opts.chainId)) {
        throw unavailable(`The EVM RPC serves chain ${String(chain)}, not the configured chain ${this.opts.chainId}`);
      }
    })();
    return this.chainCheck.catch((e) => {
      this.chainCheck = undefined;
      throw e;
    });
  }

  private async rpc(method: string, params: unknown[]): Promise<unknown> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.opts.rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
      });
      text = await res.text();
    } catch {
      throw unavailable('The EVM RPC cannot be reached', { rpc_method: method });
    }
    let body: { result?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    // Some providers answer a revert with HTTP 4xx/5xx and a JSON-RPC error body: read it first.
    if (body && typeof body === 'object' && body.error && typeof body.error === 'object') {
      throw new RpcError(typeof body.error.code === 'number' ? body.error.code : 0, String(body.error.message ?? 'unknown error'));
    }
    if (!res.ok) throw unavailable(`The EVM RPC answered HTTP ${res.status}`, { rpc_method: method });
    if (!body || typeof body !== 'object' || !('result' in body)) {
      throw unavailable('The EVM RPC answered something that is not a JSON-RPC response', { rpc_method: method });
    }
    return body.result;
  }
}

class RpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }

  /** geth/erigon/anvil: code 3 "execution reverted"; others: -32000/-32603 with "revert" in the text. */
  get isRevert(): boolean {
    return this.code === 3 || /revert/i.test(this.message);
  }
}

function unavailable(message: string, details: Record<string, unknown> = {}): ApiError {
  return new ApiError('SERVICE_UNAVAILABLE', message, details);
}
