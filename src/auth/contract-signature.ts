import { ERC6492_MAGIC, ERC6492_VALIDATOR_BYTECODE } from './erc6492-validator.js';

/** isValidSignature(bytes32,bytes): EIP-1271's selector, and the value a valid answer starts with. */
export const ERC1271_MAGIC = '0x1626ba7e';
const HEX_BYTES = /^0x([0-9a-fA-F]{2})+$/;

/** The calls this needs from an EVM JSON-RPC client (EvmOwnership has them). */
export interface EvmCalls {
  /** eth_call at latest; throws RpcError (with isRevert) for a JSON-RPC error */
  ethCall(to: string | undefined, data: string): Promise<unknown>;
  getCode(address: string): Promise<string>;
}

export function isHexBytes(text: string): boolean {
  return HEX_BYTES.test(text);
}

/**
 * Smart-contract wallet signatures. EIP-1271: a deployed wallet answers
 * isValidSignature(hash, signature) with 0x1626ba7e. EIP-6492: a signature ending in the 6492
 * magic is checked by the deployless ValidateSigOffchain call, which deploys the counterfactual
 * wallet inside the eth_call and then asks it (answer: one byte, 0x01). `hash` is what the wallet
 * was asked to sign: for sign-in, the EIP-191 digest of the message.
 */
export class ContractSignatures {
  constructor(private readonly rpc: EvmCalls) {}

  async isValid(wallet: string, hash: Uint8Array, signature: string): Promise<boolean> {
    if (!isHexBytes(signature)) return false;
    const hashHex = Buffer.from(hash).toString('hex');
    const sig = signature.slice(2).toLowerCase();
    if (sig.endsWith(ERC6492_MAGIC)) {
      const data = ERC6492_VALIDATOR_BYTECODE + word(wallet.slice(2)) + hashHex + word((96).toString(16)) + bytesTail(sig);
      const out = await this.call(undefined, data);
      return typeof out === 'string' && /^0x0*1$/.test(out);
    }
    if ((await this.rpc.getCode(wallet)) === '0x') return false; // no contract there: not a 1271 wallet
    const out = await this.call(wallet, ERC1271_MAGIC + hashHex + word((64).toString(16)) + bytesTail(sig));
    return typeof out === 'string' && out.toLowerCase().startsWith(ERC1271_MAGIC) && out.length === 66;
  }

  /** A revert (the wallet refuses, or is not a 1271 wallet) is "not valid"; other failures propagate. */
  private async call(to: string | undefined, data: string): Promise<unknown> {
    try {
      return await this.rpc.ethCall(to, data);
    } catch (e) {
      if ((e as { isRevert?: boolean }).isRevert) return undefined;
      throw e;
    }
  }
}

/** A 32-byte left-padded ABI word of hex digits. */
function word(hex: string): string {
  return hex.toLowerCase().padStart(64, '0');
}

/** The tail of a dynamic `bytes`: its length word, then the bytes right-padded to 32. */
function bytesTail(hex: string): string {
  const len = hex.length / 2;
  return word(len.toString(16)) + hex.padEnd(Math.ceil(len / 32) * 64, '0');
}
