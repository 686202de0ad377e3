import { ApiError } from '../../src/errors.js';
import type { OwnershipVerifier } from '../../src/auth/ownership.js';

export interface EvmOwnershipOptions {
  rpcUrl: string;
  contract: string;
  chainId: number;
  timeoutMs?: number;
}

const OWNER_OF = '0x6352211e';

/**
 * ERC-721 `ownerOf(tokenId)` over JSON-RPC `eth_call` at "latest". The RPC's chain id is checked
 * once (eth_chainId) so a misconfigured URL cannot answer for another chain. A reverting call
 * (the token does not exist) means no owner; an unreachable RPC is SERVICE_UNAVAILABLE.
 */
export class EvmOwnership implements OwnershipVerifier {
  readonly kind = 'evm';
  private chainChecked = false;
  private nextId = 1;

  constructor(private readonly opts: EvmOwnershipOptions) {}

  async ownerOf(nftTokenId: string): Promise<string | undefined> {
    if (!/^\d{1,78}$/.test(nftTokenId)) return undefined;
    const id = BigInt(nftTokenId);
    if (id >= 2n ** 256n) return undefined;
    if (!this.chainChecked) {
      const chain = await this.rpc<string>('eth_chainId', []);
      if (typeof chain !== 'string' || BigInt(chain) !== BigInt(this.opts.chainId)) {
        throw new ApiError('SERVICE_UNAVAILABLE', `The EVM RPC serves chain ${chain}, not the configured chain ${this.opts.chainId}`);
      }
      this.chainChecked = true;
    }
    const data = OWNER_OF + id.toString(16).padStart(64, '0');
    let result: string;
    try {
      result = await this.rpc<string>('eth_call', [{ to: this.opts.contract, data }, 'latest']);
    } catch (e) {
      if (e instanceof RpcError) return undefined; // execution reverted: no such token
      throw e;
    }
    if (typeof result !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(result)) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'The EVM RPC returned a malformed ownerOf result');
    }
    const owner = '0x' + result.slice(-40);
    return /^0x0{40}$/.test(owner) ? undefined : owner;
  }

  private async rpc<T>(method: string, params: unknown[]): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.opts.rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
      });
    } catch {
      throw new ApiError('SERVICE_UNAVAILABLE', 'The EVM RPC cannot be reached', { rpc_method: method });
    }
    if (!res.ok) throw new ApiError('SERVICE_UNAVAILABLE', `The EVM RPC answered HTTP ${res.status}`, { rpc_method: method });
    let body: { result?: T; error?: { code: number; message: string } };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw new ApiError('SERVICE_UNAVAILABLE', 'The EVM RPC answered something that is not JSON');
    }
    if (body.error) throw new RpcError(body.error.code, body.error.message);
    return body.result as T;
  }
}

class RpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}
