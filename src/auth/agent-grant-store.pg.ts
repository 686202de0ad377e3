import type { Sql } from '../db/pg.js';
import type { AgentGrantStore, CredentialDeployment } from './agent-grant-store.js';

export class PgAgentGrantStore implements AgentGrantStore {
  constructor(private readonly sql: Sql) {}

  async grant(nft: string, sid: string, expiresAt: number): Promise<void> {
    await this.sql`INSERT INTO agent_token_grants (nft_token_id, session_id, expires_at) VALUES (${nft}, ${sid}, ${expiresAt})
      ON CONFLICT (nft_token_id, session_id) DO UPDATE SET expires_at = greatest(agent_token_grants.expires_at, excluded.expires_at)`;
  }

  async revokedSessions(nft: string, now: number): Promise<string[]> {
    const rows = await this.sql<{ session_id: string }[]>`SELECT g.session_id FROM agent_token_grants g JOIN sessions s ON s.id = g.session_id
      WHERE g.nft_token_id = ${nft} AND g.expires_at > ${now} AND s.revoked_at IS NOT NULL`;
    return rows.map((r) => r.session_id);
  }

  async holders(nft: string, now: number): Promise<string[]> {
    const rows = await this.sql<{ wallet: string }[]>`SELECT DISTINCT s.wallet FROM agent_token_grants g JOIN sessions s ON s.id = g.session_id
      WHERE g.nft_token_id = ${nft} AND g.expires_at > ${now}`;
    return rows.map((r) => r.wallet);
  }

  async prune(now: number): Promise<void> {
    await this.sql`DELETE FROM agent_token_grants WHERE expires_at <= ${now}`;
  }

  async cutoff(nft: string): Promise<number> {
    const [row] = await this.sql<{ not_before: number }[]>`SELECT not_before FROM agent_token_cutoffs WHERE nft_token_id = ${nft}`;
    return row?.not_before ?? 0;
  }

  async raiseCutoff(nft: string, at: number): Promise<void> {
    await this.sql`INSERT INTO agent_token_cutoffs (nft_token_id, not_before) VALUES (${nft}, ${at})
      ON CONFLICT (nft_token_id) DO UPDATE SET not_before = greatest(agent_token_cutoffs.not_before, excluded.not_before)`;
  }

  async deployment(id: string): Promise<CredentialDeployment | undefined> {
    const [row] = await this.sql<CredentialDeployment[]>`SELECT id, nft_token_id, status, endpoint_url FROM deployments WHERE id = ${id}`;
    return row;
  }

  async latestDeployment(nft: string): Promise<(CredentialDeployment & { provider: string }) | undefined> {
    const [row] = await this.sql<(CredentialDeployment & { provider: string })[]>`SELECT id, nft_token_id, status, endpoint_url, provider
      FROM deployments WHERE nft_token_id = ${nft} ORDER BY created_at DESC LIMIT 1`;
    return row;
  }
}
