import { PanthersError } from './errors.js';
import { clientFromSessionFile, defaultSessionPath, type SavedSession } from './session-file.js';
import type { PanthersClient } from './client.js';

// Node only: what the `panthers` commands that call the API share (deploy, status, stop, chat).

export interface CliSession {
  client: PanthersClient;
  session: SavedSession;
  url: string;
  file: string;
  /** --nft, else the NFT the session was opened for */
  nft: string | undefined;
}

/**
 * The client for a CLI command: the session in --session FILE (default <data dir>/session.json,
 * written by `panthers login --save`, or `panthers login ... > FILE`), the server in --url (default:
 * the session's, else http://127.0.0.1:3000).
 */
export function cliSession(flags: Record<string, string | true>, dataDir: () => string): CliSession {
  const file = typeof flags.session === 'string' ? flags.session : defaultSessionPath(typeof flags['data-dir'] === 'string' ? flags['data-dir'] : dataDir());
  const { client, session, url } = clientFromSessionFile(file, typeof flags.url === 'string' ? flags.url : undefined);
  return { client, session, url, file, nft: typeof flags.nft === 'string' ? flags.nft : session.nft_token_id };
}

/** One line for stderr: the API's code and message (and the field for validation errors). */
export function describeError(e: unknown): string {
  if (e instanceof PanthersError) {
    const field = typeof e.details.field === 'string' ? ` (field ${e.details.field})` : '';
    return `${e.code}${e.status ? ` ${e.status}` : ''}: ${e.message}${field}`;
  }
  return e instanceof Error ? e.message : String(e);
}
