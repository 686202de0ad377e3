/**
 * The EIP-4361 (Sign-In With Ethereum) message, LF-separated. `secret1...` wallets get the same
 * text in its CAIP-122 ("Sign-In with X") form: the account line names Cosmos instead of Ethereum
 * and the chain id is a Cosmos chain id; they sign it with ADR-036.
 */
export interface SiweMessage {
  /** host of the site asking, including a non-default port */
  domain: string;
  address: string;
  /** one line, no LF */
  statement?: string;
  uri: string;
  version: '1';
  chainId: string;
  /** >= 8 alphanumerics */
  nonce: string;
  /** RFC 3339 */
  issuedAt: string;
  expirationTime?: string;
  /** 'Ethereum' (EIP-4361) or 'Cosmos' (CAIP-122) */
  namespace: 'Ethereum' | 'Cosmos';
}

export function formatSiweMessage(m: SiweMessage): string {
  const lines = [`${m.domain} wants you to sign in with your ${m.namespace} account:`, m.address, ''];
  if (m.statement !== undefined) lines.push(m.statement, '');
  lines.push(`URI: ${m.uri}`, `Version: ${m.version}`, `Chain ID: ${m.chainId}`, `Nonce: ${m.nonce}`, `Issued At: ${m.issuedAt}`);
  if (m.expirationTime !== undefined) lines.push(`Expiration Time: ${m.expirationTime}`);
  return lines.join('\n');
}

const HEADER = /^(.+) wants you to sign in with your (Ethereum|Cosmos) account:$/;

/** Parses a message in the format above; undefined when it is not one. */
export function parseSiweMessage(text: string): SiweMessage | undefined {
  const lines = text.split('\n');
  const head = HEADER.exec(lines[0] ?? '');
  if (!head || !lines[1] || lines[2] !== '') return undefined;
  let i = 3;
  let statement: string | undefined;
  if (lines[i] !== undefined && !lines[i]!.startsWith('URI: ')) {
    statement = lines[i];
    if (lines[i + 1] !== '') return undefined;
    i += 2;
  }
  const fields = new Map<string, string>();
  for (; i < lines.length; i++) {
    const m = /^([A-Za-z ]+): (.*)$/.exec(lines[i]!);
    if (!m || fields.has(m[1]!)) return undefined;
    fields.set(m[1]!, m[2]!);
  }
  const uri = fields.get('URI');
  const version = fields.get('Version');
  const chainId = fields.get('Chain ID');
  const nonce = fields.get('Nonce');
  const issuedAt = fields.get('Issued At');
  if (!uri || version !== '1' || !chainId || !nonce || !/^[A-Za-z0-9]{8,}$/.test(nonce) || !issuedAt) return undefined;
  return {
    domain: head[1]!,
    namespace: head[2] as 'Ethereum' | 'Cosmos',
    address: lines[1],
    statement,
    uri,
    version,
    chainId,
    nonce,
    issuedAt,
    expirationTime: fields.get('Expiration Time'),
  };
}
