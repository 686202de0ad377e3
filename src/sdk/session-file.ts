import fs from 'node:fs';
import path from 'node:path';
import { PanthersClient, type Tokens } from './client.js';

// Node only (the CLI): not exported from the browser-safe index.

/** <data dir>/session.json: where `panthers login --save` keeps the session the other commands use. */
export function defaultSessionPath(dataDir: string): string {
  return path.join(dataDir, 'session.json');
}

/** A saved session: the tokens plus the server they belong to. */
export interface SavedSession extends Tokens {
  /** the orchestrator's base URL */
  url?: string;
}

/**
 * Reads a session file. Accepts what `panthers login` prints (its JSON: wallet_address,
 * nft_token_id, access_token, refresh_token, expires_in, session_id[, signing_key]) as well as
 * what saveSession writes, so `panthers login ... > session.json` works too.
 */
export function readSession(file: string): SavedSession {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist (run `panthers login` first)' : (e as Error).message;
    throw new Error(`session file ${file} ${why}`);
  }
  if (typeof raw.access_token !== 'string' || typeof raw.refresh_token !== 'string') {
    throw new Error(`session file ${file} has no access_token/refresh_token`);
  }
  const str = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : undefined);
  return {
    access_token: raw.access_token,
    refresh_token: raw.refresh_token,
    access_expires_at: typeof raw.access_expires_at === 'number' ? raw.access_expires_at : undefined,
    session_id: str('session_id'),
    signing_key: str('signing_key'),
    wallet_address: str('wallet_address'),
    nft_token_id: str('nft_token_id'),
    url: str('url'),
  };
}

/** Writes a session file readable by its owner only (0600), atomically (write + rename). */
export function saveSession(file: string, session: SavedSession): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(session, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/**
 * A client resuming the session saved in `file`; tokens it refreshes are written back (the
 * refresh token rotates, so the file must follow or the next run could not refresh).
 */
export function clientFromSessionFile(file: string, url?: string): { client: PanthersClient; session: SavedSession; url: string } {
  const session = readSession(file);
  const base = (url ?? session.url ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
  const client = new PanthersClient({
    baseUrl: base,
    tokens: session,
    onTokens: (t) => {
      if (t) saveSession(file, { ...session, ...t, url: base });
    },
  });
  return { client, session, url: base };
}
