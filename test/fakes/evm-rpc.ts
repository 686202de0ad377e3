import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AbiCoder, SigningKey, getAddress, id, keccak256, recoverAddress, concat, zeroPadValue, toBeHex } from 'ethers';
import { ERC6492_MAGIC, ERC6492_VALIDATOR_BYTECODE } from '../../src/auth/erc6492-validator.js';

/**
 * A JSON-RPC 2.0 node on 127.0.0.1 that speaks what an Ethereum node answers for one ERC-721
 * contract and a few smart-contract wallets. Shapes follow the execution-apis specification
 * (ethereum/execution-apis: src/eth/block.yaml eth_blockNumber -> QUANTITY; src/eth/filter.yaml
 * eth_getLogs(Filter) -> Log[]; src/schemas/filter.yaml Filter {fromBlock, toBlock, address,
 * topics}; src/schemas/receipt.yaml Log {removed, logIndex, transactionIndex, transactionHash,
 * blockHash, blockNumber, address, data, topics}) and geth's answers (a revert is error code 3,
 * "execution reverted", with the revert data). ABI encoding is ethers' AbiCoder (an
 * implementation independent of the server's).
 *
 * - ownerOf(uint256) (0x6352211e) on the contract; transfer() mines a block holding an ERC-721
 *   Transfer(address indexed from, address indexed to, uint256 indexed tokenId) log.
 * - EIP-1271 isValidSignature(bytes32,bytes) (0x1626ba7e) on deployed smart wallets: valid when
 *   the signature recovers the wallet's owner key (OpenZeppelin's ERC1271 example wallet).
 * - EIP-6492: a deployless eth_call (no `to`) of the ValidateSigOffchain bytecode (what viem's
 *   verifyHash sends) is evaluated as that contract would: unwrap the 6492 envelope, "deploy"
 *   the counterfactual wallet from its factory call (createAccount(address owner,uint256 salt)),
 *   then ask isValidSignature; the answer is one byte, 0x01 or 0x00.
 */
export const TRANSFER_TOPIC = id('Transfer(address,address,uint256)');
const OWNER_OF = '0x6352211e';
const IS_VALID_SIGNATURE = '0x1626ba7e';
const CREATE_ACCOUNT = id('createAccount(address,uint256)').slice(0, 10);
const abi = AbiCoder.defaultAbiCoder();

interface Log {
  removed: boolean; logIndex: string; transactionIndex: string; transactionHash: string; blockHash: string;
  blockNumber: string; address: string; data: string; topics: string[];
}

export class FakeEvmRpc {
  readonly contract: string;
  readonly factory = getAddress('0x' + 'fac70e'.padEnd(40, '0'));
  readonly owners = new Map<bigint, string>();
  /** deployed smart wallets: address -> owner key address */
  readonly smartWallets = new Map<string, string>();
  chainId = 1;
  head = 100;
  private readonly logs: (Log & { block: number })[] = [];
  readonly methods: string[] = [];
  /** set to make every eth_call (and eth_getLogs) fail with a non-revert error */
  failCalls: { code: number; message: string } | undefined;
  /** set to answer HTTP 503 to everything */
  down = false;
  private server = http.createServer((req, res) => this.handle(req, res));
  url = '';

  constructor(contract = '0x' + 'c0ffee'.padEnd(40, '0')) {
    this.contract = contract.toLowerCase();
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  /** Mines a block holding the Transfer log and makes `to` the owner (the zero address burns). */
  transfer(tokenId: bigint, to: string): void {
    const from = this.owners.get(tokenId) ?? '0x' + '0'.repeat(40);
    this.head++;
    if (/^0x0{40}$/.test(to)) this.owners.delete(tokenId);
    else this.owners.set(tokenId, to);
    const blockHash = keccak256(toBeHex(this.head, 32));
    this.logs.push({
      block: this.head, removed: false, logIndex: '0x0', transactionIndex: '0x0', transactionHash: keccak256(concat([blockHash, toBeHex(tokenId, 32)])),
      blockHash, blockNumber: toBeHex(this.head), address: this.contract, data: '0x',
      topics: [TRANSFER_TOPIC, zeroPadValue(from, 32), zeroPadValue(to, 32), toBeHex(tokenId, 32)],
    });
  }

  /** Mines empty blocks. */
  mine(n = 1): void {
    this.head += n;
  }

  /** A counterfactual wallet of `owner`: its address and the factory call that would deploy it. */
  counterfactual(owner: string, salt = 0n): { address: string; factory: string; factoryCalldata: string } {
    const factoryCalldata = CREATE_ACCOUNT + abi.encode(['address', 'uint256'], [owner, salt]).slice(2);
    return { address: this.counterfactualAddress(owner, salt), factory: this.factory, factoryCalldata };
  }

  private counterfactualAddress(owner: string, salt: bigint): string {
    // Stands for CREATE2(factory, salt, initcode(owner)): deterministic in (factory, owner, salt).
    return getAddress('0x' + keccak256(abi.encode(['address', 'address', 'uint256'], [this.factory, owner, salt])).slice(-40));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      if (this.down) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('upstream unavailable');
        return;
      }
      const { id: rid, method, params } = JSON.parse(raw) as { id: number; method: string; params: any[] };
      this.methods.push(method);
      const reply = (body: object) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: rid, ...body }));
      };
      try {
        reply({ result: this.answer(method, params) });
      } catch (e) {
        reply({ error: e as object });
      }
    });
  }

  private answer(method: string, params: any[]): unknown {
    switch (method) {
      case 'eth_chainId':
        return toBeHex(this.chainId);
      case 'eth_blockNumber':
        return toBeHex(this.head);
      case 'eth_getLogs': {
        if (this.failCalls) throw this.failCalls;
        const [f] = params as [{ fromBlock?: string; toBlock?: string; address?: string; topics?: (string | null)[] }];
        const from = Number(BigInt(f.fromBlock ?? toBeHex(this.head)));
        const to = Number(BigInt(f.toBlock ?? toBeHex(this.head)));
        if (from > to) throw { code: -32000, message: 'invalid block range params' }; // the spec's error for eth_getLogs
        return this.logs
          .filter((l) => l.block >= from && l.block <= to)
          .filter((l) => !f.address || l.address === f.address.toLowerCase())
          .filter((l) => (f.topics ?? []).every((t, i) => t === null || t === l.topics[i]))
          .map(({ block: _block, ...l }) => l);
      }
      case 'eth_getCode': {
        const [address] = params as [string];
        if (getAddress(address) === getAddress(this.contract)) return '0x6080604052';
        return this.smartWallets.has(getAddress(address)) ? '0x6080604052348015' : '0x';
      }
      case 'eth_call': {
        if (this.failCalls) throw this.failCalls;
        const [{ to, data }, block] = params as [{ to?: string; data: string }, string];
        if (block !== 'latest') throw { code: -32602, message: 'invalid argument 1: unsupported block' };
        if (!to) return this.deployless(data);
        if (to.toLowerCase() === this.contract) return this.ownerOf(data);
        const wallet = this.smartWallets.get(getAddress(to));
        if (!wallet) return '0x'; // a call to an address without code returns empty data
        return this.isValidSignature(wallet, data);
      }
      default:
        throw { code: -32601, message: `the method ${method} does not exist/is not available` };
    }
  }

  private ownerOf(data: string): string {
    if (!/^0x6352211e[0-9a-f]{64}$/.test(data) || !data.startsWith(OWNER_OF)) throw { code: -32602, message: 'invalid argument' };
    const owner = this.owners.get(BigInt('0x' + data.slice(10)));
    // OpenZeppelin 5: ERC721NonexistentToken(uint256)
    if (!owner) throw { code: 3, message: 'execution reverted', data: '0x7e273289' + data.slice(10) };
    return zeroPadValue(owner.toLowerCase(), 32);
  }

  private isValidSignature(walletOwner: string, data: string): string {
    if (!data.startsWith(IS_VALID_SIGNATURE)) throw { code: 3, message: 'execution reverted', data: '0x' };
    const [hash, signature] = abi.decode(['bytes32', 'bytes'], '0x' + data.slice(10)) as unknown as [string, string];
    return this.checks(walletOwner, hash, signature) ? IS_VALID_SIGNATURE.padEnd(66, '0') : '0xffffffff'.padEnd(66, '0');
  }

  private checks(walletOwner: string, hash: string, signature: string): boolean {
    try {
      return getAddress(recoverAddress(hash, signature)) === getAddress(walletOwner);
    } catch {
      return false;
    }
  }

  /** The ValidateSigOffchain constructor, evaluated: 0x01 when valid, 0x00 when not. */
  private deployless(data: string): string {
    if (!data.startsWith(ERC6492_VALIDATOR_BYTECODE)) throw { code: -32000, message: 'invalid opcode: unsupported deployless call in this fake' };
    const [signer, hash, sig] = abi.decode(['address', 'bytes32', 'bytes'], '0x' + data.slice(ERC6492_VALIDATOR_BYTECODE.length)) as unknown as [string, string, string];
    let inner = sig;
    let owner = this.smartWallets.get(getAddress(signer));
    if (sig.toLowerCase().endsWith(ERC6492_MAGIC)) {
      const [factory, calldata, wrapped] = abi.decode(['address', 'bytes', 'bytes'], sig.slice(0, -64)) as unknown as [string, string, string];
      inner = wrapped;
      if (!owner) {
        if (getAddress(factory) !== this.factory || !calldata.startsWith(CREATE_ACCOUNT)) return '0x00';
        const [o, salt] = abi.decode(['address', 'uint256'], '0x' + calldata.slice(10)) as unknown as [string, bigint];
        if (this.counterfactualAddress(o, salt) !== getAddress(signer)) return '0x00';
        owner = o;
      }
    }
    if (!owner) return this.checks(signer, hash, inner) ? '0x01' : '0x00'; // an EOA: ecrecover
    return this.checks(owner, hash, inner) ? '0x01' : '0x00';
  }
}

/** Signs a 32-byte digest with a raw key (what a smart wallet's owner key signs). */
export function signDigest(privateKey: string, digest: string): string {
  return new SigningKey(privateKey).sign(digest).serialized;
}

/** Wraps a signature in the EIP-6492 envelope: abi.encode(factory, factoryCalldata, sig) ++ magic. */
export function wrap6492(factory: string, factoryCalldata: string, signature: string): string {
  return abi.encode(['address', 'bytes', 'bytes'], [factory, factoryCalldata, signature]) + ERC6492_MAGIC;
}
