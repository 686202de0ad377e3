import type { Db } from '../db/database.js';
import type { RefreshTokenRow, SessionRow, SessionStore } from './session-store.js';

/** SessionStore on SQLite: synchronous statements inside, resolved promises outside. */
export class SqliteSessionStore implements SessionStore {
  private readonly s;
  private readonly openTx;
  private readonly rotateTx;

  constructor(db: Db) {
    const s = {
      get: db.prepare<[string], SessionRow>(
        'SELECT id, wallet, nft_token_id, refresh_hash, created_at, expires_at, revoked_at, revoked_why FROM sessions WHERE id = ?',
      ),
      sessionOf: db.prepare<[string], SessionRow>(
        `SELECT s.id, s.wallet, s.nft_token_id, s.refresh_hash, s.created_at, s.expires_at, s.revoked_at, s.revoked_why
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = ?`,
      ),
      refresh: db.prepare<[string], RefreshTokenRow>('SELECT hash, session_id, created_at, rotated_at FROM refresh_tokens WHERE hash = ?'),
      insertSession: db.prepare(
        'INSERT INTO sessions (id, wallet, nft_token_id, refresh_hash, created_at, expires_at) VALUES (@id, @wallet, @nft_token_id, @refresh_hash, @created_at, @expires_at)',
      ),
      insertToken: db.prepare<[string, string, number]>('INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)'),
      markRotated: db.prepare<[number, string]>('UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL'),
      setCurrent: db.prepare<[string, number, string, string]>(
        'UPDATE sessions SET refresh_hash = ?, expires_at = ? WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL',
      ),
      revoke: db.prepare<[number, string, string]>('UPDATE sessions SET revoked_at = ?, revoked_why = ? WHERE id = ? AND revoked_at IS NULL'),
      activeForNft: db.prepare<[string, number], { id: string; wallet: string }>(
        'SELECT id, wallet FROM sessions WHERE nft_token_id = ? AND revoked_at IS NULL AND expires_at > ?',
      ),
      activeNfts: db.prepare<[number], string>('SELECT DISTINCT nft_token_id FROM sessions WHERE revoked_at IS NULL AND expires_at > ?').pluck(),
      setSigningKey: db.prepare<[string, string]>('UPDATE sessions SET signing_key = ? WHERE id = ?'),
      signingKey: db.prepare<[string], string | null>('SELECT signing_key FROM sessions WHERE id = ? AND revoked_at IS NULL').pluck(),
    };
    this.s = s;
    this.openTx = db.transaction((row: Omit<SessionRow, 'revoked_at' | 'revoked_why'>) => {
      s.insertSession.run(row);
      s.insertToken.run(row.refresh_hash, row.id, row.created_at);
    }).immediate;
    this.rotateTx = db.transaction((id: string, oldHash: string, newHash: string, at: number, expiresAt: number): boolean => {
      if (s.setCurrent.run(newHash, expiresAt, id, oldHash).changes !== 1) return false;
      s.markRotated.run(at, oldHash);
      s.insertToken.run(newHash, id, at);
      return true;
    }).immediate;
  }

  async get(id: string): Promise<SessionRow | undefined> {
    return this.s.get.get(id);
  }

  async refreshToken(hash: string): Promise<RefreshTokenRow | undefined> {
    return this.s.refresh.get(hash);
  }

  async sessionOfRefreshToken(hash: string): Promise<SessionRow | undefined> {
    return this.s.sessionOf.get(hash);
  }

  async open(row: Omit<SessionRow, 'revoked_at' | 'revoked_why'>): Promise<void> {
    this.openTx(row);
  }

  async rotate(id: string, oldHash: string, newHash: string, at: number, expiresAt: number): Promise<boolean> {
    return this.rotateTx(id, oldHash, newHash, at, expiresAt);
  }

  async revoke(id: string, why: string, at: number): Promise<boolean> {
    return this.s.revoke.run(at, why, id).changes === 1;
  }

  async activeForNft(nft: string, now: number): Promise<{ id: string; wallet: string }[]> {
    return this.s.activeForNft.all(nft, now);
  }

  async activeNfts(now: number): Promise<string[]> {
    return this.s.activeNfts.all(now);
  }

  async setSigningKey(id: string, key: string): Promise<boolean> {
    return this.s.setSigningKey.run(key, id).changes === 1;
  }

  async signingKey(id: string): Promise<string | null | undefined> {
    return this.s.signingKey.get(id);
  }
}
