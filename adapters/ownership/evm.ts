import { ApiError } from '../../src/errors.js';
import type { OwnedPage, OwnershipChanges, OwnershipVerifier } from '../../src/auth/ownership.js';

/** Where the Transfer-log poller keeps the last block it has read (a table row in practice). */
export interface BlockCursor {
  get(): number | undefined | Promise<number | undefined>;
  set(block: number): void | Promise<void>;
}

export interface EvmOwnershipOptions {
  rpcUrl: string;
  contract: string;
  chainId: number;
  timeoutMs?: number;
  /** persisted progress of changes(); without one, changes() starts at the head each process */
  cursor?: BlockCursor;
  /** most blocks one eth_getLogs asks for (public RPCs cap ranges at 1k-10k blocks) */
  maxLogRange?: number;
}

/** keccak256("Transfer(address,address,uint256)"): topic 0 of ERC-721 (and ERC-20) Transfer logs. */
export const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
const QUANTITY = /^0x(0|[1-9a-f][0-9a-f]*)$/i;
const WORD = /^0x[0-9a-fA-F]{64}$/;

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
  private memoryCursor: number | undefined;
  /** blocks per eth_getLogs now: halved when the node refuses a range (result caps), regrown after */
  private logRange: number | undefined;

  constructor(private readonly opts: EvmOwnershipOptions) {}

  /**
   * Token ids named by the contract's Transfer logs in the blocks after the cursor, up to the
   * head (at most maxLogRange blocks per call): eth_blockNumber, then eth_getLogs with the
   * contract address and topic 0. ERC-721 Transfer has four topics (from, to and tokenId are
   * indexed); the id is topic 3. ownerOf stays the truth: the caller asks it for each id, so a
   * log later removed by a reorg changes nothing. The first call (no cursor yet) starts at the
   * head: history before this server watched is not a change it has to act on.
   */
  async changes(): Promise<OwnershipChanges> {
    await this.checkChain();
    const head = quantity(await this.call('eth_blockNumber', []), 'eth_blockNumber');
    const cursor = this.opts.cursor ? await this.opts.cursor.get() : this.memoryCursor;
    const save = async (block: number) => {
      if (this.opts.cursor) await this.opts.cursor.set(block);
      else this.memoryCursor = block;
    };
    if (cursor === undefined) {
      await save(head);
      return { ids: [] };
    }
    if (head <= cursor) return { ids: [] }; // nothing new (or the node is behind: wait for it)
    const max = this.opts.maxLogRange ?? 1000;
    const range = (this.logRange ??= max);
    const from = cursor + 1;
    const to = Math.min(head, cursor + range);
    let logs: unknown;
    try {
      logs = await this.call('eth_getLogs', [{
        address: this.opts.contract, fromBlock: hex(from), toBlock: hex(to), topics: [TRANSFER_TOPIC],
      }]);
    } catch (e) {
      // Nodes cap a query ("query returned more than 10000 results", "block range too large"):
      // a smaller range next time, so the cursor cannot stay stuck on one busy stretch.
      this.logRange = Math.max(1, Math.floor(range / 2));
      throw e;
    }
    this.logRange = Math.min(max, range * 2);
    if (!Array.isArray(logs)) throw unavailable('The EVM RPC answered eth_getLogs with something that is not a list of logs');
    const ids = new Set<string>();
    for (const log of logs as { topics?: unknown; address?: unknown }[]) {
      const topics = log?.topics;
      if (!Array.isArray(topics) || topics.length !== 4 || topics[0] !== TRANSFER_TOPIC || !WORD.test(String(topics[3]))) continue;
      if (typeof log.address === 'string' && log.address.toLowerCase() !== this.opts.contract.toLowerCase()) continue;
      ids.add(BigInt(topics[3] as string).toString());
    }
    return { ids: [...ids], commit: () => save(to) };
  }

  private async call(method: string, params: unknown[]): Promise<unknown> {
    try {
      return await this.rpc(method, params);
    } catch (e) {
      throw e instanceof RpcError ? unavailable(`The EVM RPC failed ${method}: ${e.message}`, { rpc_code: e.code }) : e;
    }
  }

  /** eth_call at "latest" (no `to`: a deployless call); a revert is an RpcError, other failures SERVICE_UNAVAILABLE. */
  async ethCall(to: string | undefined, data: string): Promise<unknown> {
    await this.checkChain();
    try {
      return await this.rpc('eth_call', [to ? { to, data } : { data }, 'latest']);
    } catch (e) {
      if (e instanceof RpcError && !e.isRevert) throw unavailable(`The EVM RPC failed eth_call: ${e.message}`, { rpc_code: e.code });
      throw e;
    }
  }

  async getCode(address: string): Promise<string> {
    await this.checkChain();
    const code = await this.call('eth_getCode', [address, 'latest']);
    if (typeof code !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(code)) throw unavailable('The EVM RPC returned malformed eth_getCode');
    return code;
  }

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
    this.enumerable ??= this.callWord(SUPPORTS_INTERFACE + ERC721_ENUMERABLE_ID.padEnd(64, '0'))
      .then((r) => r !== undefined && /^0x0*1$/.test(r))
      .catch((e) => {
        this.enumerable = undefined;
        throw e;
      });
    if (!(await this.enumerable)) return undefined;
    const owner = wallet.slice(2).toLowerCase().padStart(64, '0');
    const balance = await this.callWord(BALANCE_OF + owner);
    if (balance === undefined) return undefined;
    const total = Number(BigInt(balance));
    const tokens: string[] = [];
    for (let i = offset; i < Math.min(total, offset + limit); i++) {
      const t = await this.callWord(TOKEN_OF_OWNER_BY_INDEX + owner + i.toString(16).padStart(64, '0'));
      if (t === undefined) break; // the balance moved while we listed
      tokens.push(BigInt(t).toString());
    }
    return { tokens, total };
  }

  /** eth_call returning one 32-byte word, or undefined when the call reverts. */
  private async callWord(data: string): Promise<string | undefined> {
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

function hex(n: number): string {
  return '0x' + n.toString(16);
}

function quantity(v: unknown, method: string): number {
  if (typeof v !== 'string' || !QUANTITY.test(v)) throw unavailable(`The EVM RPC answered ${method} with something that is not a QUANTITY`);
  return Number(BigInt(v));
}

export class RpcError extends Error {
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
