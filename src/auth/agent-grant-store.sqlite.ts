import type { Db } from '../db/database.js';
import type { AgentGrantStore, CredentialDeployment } from './agent-grant-store.js';

export class SqliteAgentGrantStore implements AgentGrantStore {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      upsertGrant: db.prepare<[string, string, number]>(
        `INSERT INTO agent_token_grants (nft_token_id, session_id, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (nft_token_id, session_id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`,
      ),
      revoked: db.prepare<[string, number], string>(
        `SELECT g.session_id FROM agent_token_grants g JOIN sessions s ON s.id = g.session_id
         WHERE g.nft_token_id = ? AND g.expires_at > ? AND s.revoked_at IS NOT NULL`,
      ).pluck(),
      prune: db.prepare<[number]>('DELETE FROM agent_token_grants WHERE expires_at <= ?'),
      holders: db.prepare<[string, number], string>(
        `SELECT DISTINCT s.wallet FROM agent_token_grants g JOIN sessions s ON s.id = g.session_id
         WHERE g.nft_token_id = ? AND g.expires_at > ?`,
      ).pluck(),
      cutoffGet: db.prepare<[string], number>('SELECT not_before FROM agent_token_cutoffs WHERE nft_token_id = ?').pluck(),
      cutoffSet: db.prepare<[string, number]>(
        `INSERT INTO agent_token_cutoffs (nft_token_id, not_before) VALUES (?, ?)
         ON CONFLICT (nft_token_id) DO UPDATE SET not_before = max(not_before, excluded.not_before)`,
      ),
      deploymentById: db.prepare<[string], CredentialDeployment>('SELECT id, nft_token_id, status, endpoint_url FROM deployments WHERE id = ?'),
      latestDeployment: db.prepare<[string], CredentialDeployment & { provider: string }>(
        'SELECT id, nft_token_id, status, endpoint_url, provider FROM deployments WHERE nft_token_id = ? ORDER BY created_at DESC LIMIT 1',
      ),
    };
  }

  async grant(nft: string, sid: string, expiresAt: number): Promise<void> {
    this.s.upsertGrant.run(nft, sid, expiresAt);
  }

  async revokedSessions(nft: string, now: number): Promise<string[]> {
    return this.s.revoked.all(nft, now);
  }

  async holders(nft: string, now: number): Promise<string[]> {
    return this.s.holders.all(nft, now);
  }

  async prune(now: number): Promise<void> {
    this.s.prune.run(now);
  }

  async cutoff(nft: string): Promise<number> {
    return this.s.cutoffGet.get(nft) ?? 0;
  }

  async raiseCutoff(nft: string, at: number): Promise<void> {
    this.s.cutoffSet.run(nft, at);
  }

  async deployment(id: string): Promise<CredentialDeployment | undefined> {
    return this.s.deploymentById.get(id);
  }

  async latestDeployment(nft: string): Promise<(CredentialDeployment & { provider: string }) | undefined> {
    return this.s.latestDeployment.get(nft);
  }
}
