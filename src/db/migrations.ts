/**
 * Schema migrations, versioned in code and applied in order at start. Each runs once, in a
 * transaction, and bumps PRAGMA user_version; re-running start is a no-op. Append only:
 * never edit a migration that has shipped.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the whole first schema.
  `
  CREATE TABLE nft_owners (
    nft_token_id TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
  );

  CREATE TABLE challenges (
    nonce        TEXT PRIMARY KEY,
    wallet       TEXT NOT NULL,
    nft_token_id TEXT NOT NULL,
    message      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
  );
  CREATE INDEX challenges_expires ON challenges (expires_at);

  CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    wallet        TEXT NOT NULL,
    nft_token_id  TEXT NOT NULL,
    refresh_hash  TEXT NOT NULL,
    signing_key   TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoked_why   TEXT
  );
  CREATE INDEX sessions_wallet ON sessions (wallet);
  CREATE UNIQUE INDEX sessions_refresh ON sessions (refresh_hash);

  -- Every refresh token ever issued for a session, by hash: a rotated one presented again is reuse.
  CREATE TABLE refresh_tokens (
    hash        TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    created_at  INTEGER NOT NULL,
    rotated_at  INTEGER
  );

  CREATE TABLE deployments (
    id             TEXT PRIMARY KEY,
    nft_token_id   TEXT NOT NULL,
    wallet         TEXT NOT NULL,
    provider       TEXT NOT NULL,
    status         TEXT NOT NULL,
    progress       INTEGER NOT NULL DEFAULT 0,
    endpoint_url   TEXT,
    resources      TEXT NOT NULL,
    agent          TEXT NOT NULL,
    provider_ref   TEXT,
    details        TEXT,
    error          TEXT,
    health         TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
  );
  CREATE INDEX deployments_nft ON deployments (nft_token_id, created_at);
  CREATE INDEX deployments_wallet ON deployments (wallet, created_at);
  CREATE INDEX deployments_status ON deployments (status);
  -- At most one live deployment per NFT, enforced by the database itself.
  CREATE UNIQUE INDEX deployments_one_active ON deployments (nft_token_id)
    WHERE status IN ('pending', 'deploying', 'running', 'stopping');

  CREATE TABLE deployment_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id  TEXT NOT NULL,
    nft_token_id   TEXT NOT NULL,
    status         TEXT NOT NULL,
    progress       INTEGER NOT NULL,
    message        TEXT NOT NULL,
    created_at     INTEGER NOT NULL
  );
  CREATE INDEX deployment_events_deployment ON deployment_events (deployment_id, id);

  CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,
    nft_token_id  TEXT NOT NULL,
    wallet        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
  );
  CREATE INDEX conversations_nft ON conversations (nft_token_id, updated_at);

  CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL,
    role             TEXT NOT NULL,
    content          TEXT NOT NULL,
    tokens           INTEGER NOT NULL DEFAULT 0,
    incomplete       INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
  );
  CREATE INDEX messages_conversation ON messages (conversation_id, id);

  CREATE TABLE chat_usage (
    nft_token_id  TEXT NOT NULL,
    day           TEXT NOT NULL,
    tokens        INTEGER NOT NULL,
    PRIMARY KEY (nft_token_id, day)
  );

  CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ts           INTEGER NOT NULL,
    request_id   TEXT NOT NULL,
    wallet       TEXT,
    nft_token_id TEXT,
    method       TEXT NOT NULL,
    route        TEXT NOT NULL,
    status       INTEGER NOT NULL,
    client_ip    TEXT,
    duration_ms  REAL NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
  );
  CREATE INDEX audit_log_ts ON audit_log (ts);
  `,
  // 2 (guarantees): the audit chain's anchors. pruned_through_* is the last row retention deleted
  // (verify starts from it instead of the genesis hash); head_* is the last row written, so a
  // truncated tail is detected too.
  `
  CREATE TABLE audit_chain (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through_id    INTEGER NOT NULL DEFAULT 0,
    pruned_through_hash  TEXT NOT NULL,
    head_id              INTEGER NOT NULL DEFAULT 0,
    head_hash            TEXT NOT NULL
  );
  `,
  // 3 (money-safe lifecycle): what a provider needs later but must not keep in provider_ref (the
  // Akash manifest holds the agent's secrets): AES-GCM encrypted, deleted once no longer needed.
  `
  CREATE TABLE deployment_secrets (
    deployment_id  TEXT PRIMARY KEY,
    value          BLOB NOT NULL,
    updated_at     INTEGER NOT NULL
  );
  `,
  // 4 (ownership transfer): sessions by NFT (a transfer revokes the previous owner's), and the
  // block an EVM Transfer-log poller has read up to, so a restart neither rescans nor skips.
  `
  CREATE INDEX IF NOT EXISTS sessions_nft ON sessions (nft_token_id) WHERE revoked_at IS NULL;
  CREATE TABLE IF NOT EXISTS ownership_cursor (
    source      TEXT PRIMARY KEY,
    block       INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
  );
  `,
  // 5 (client bounds): the caller's own X-Request-Id beside ours, and `count` for one row that
  // stands for many refused requests (per client IP and minute); both NULL in ordinary rows, so
  // rows written before keep their hashes. The replay set of HMAC-signed requests, so that a
  // restart does not reopen the 300 s window.
  `
  ALTER TABLE audit_log ADD COLUMN client_request_id TEXT;
  ALTER TABLE audit_log ADD COLUMN count INTEGER;
  CREATE TABLE signature_replay (
    signature   TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX signature_replay_expires ON signature_replay (expires_at);
  `,
  // 6 (idempotency): results of writes sent with an Idempotency-Key (or WS message_id), per
  // wallet and scope (route, NFT), kept until expires_at. state 'pending' while the first
  // request runs, in the process `boot`.
  `
  CREATE TABLE idempotency_keys (
    wallet       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    state        TEXT NOT NULL,
    boot         TEXT NOT NULL,
    status       INTEGER,
    response     TEXT,
    ref          TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (wallet, scope, key)
  );
  CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
  `,
  // 7 (agent-scoped tokens): which sessions hold an agent token for which NFT (so a remote
  // agent's revocation list names only sessions that matter to it), and per-NFT cut-offs: agent
  // tokens issued before `not_before` (ms) are refused (ownership of the NFT was lost).
  `
  CREATE TABLE agent_token_grants (
    nft_token_id  TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (nft_token_id, session_id)
  ) WITHOUT ROWID;
  CREATE INDEX agent_token_grants_expires ON agent_token_grants (expires_at);
  CREATE TABLE agent_token_cutoffs (
    nft_token_id  TEXT PRIMARY KEY,
    not_before    INTEGER NOT NULL
  );
  `,
  // 8 (cluster mode): shard leases, node membership, writer epochs and message sequence numbers
  // exist only in PostgreSQL (pg-migrations.ts); one process on SQLite is the only writer. A no-op
  // here so both lists keep the same version numbers.
  `SELECT 1;`,
  // 9 (cluster mode): the shared signing keys and the quota holds of every node exist only in
  // PostgreSQL (pg-migrations.ts); one process keeps them in its data dir and its memory.
  `SELECT 1;`,
  // 10: the turn a message belongs to (set for chat turns forwarded between cluster nodes; the
  // same schema here so one contract suite covers both stores): one user message and one reply
  // per turn id.
  `
  ALTER TABLE messages ADD COLUMN turn_id TEXT;
  CREATE UNIQUE INDEX messages_turn ON messages (turn_id, role) WHERE turn_id IS NOT NULL;
  `,
  // 11 (cluster mode): when a shard's lease epoch was claimed exists only in PostgreSQL.
  `SELECT 1;`,
];
