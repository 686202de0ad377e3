import type { Db } from '../db/database.js';
import { ProviderSecrets } from './provider-secrets.js';
import type { ProviderSecretsStore } from './provider-secrets-store.js';

/** ProviderSecretsStore on SQLite: ProviderSecrets' statements, synchronous inside. */
export class SqliteProviderSecretsStore implements ProviderSecretsStore {
  readonly secrets: ProviderSecrets;

  constructor(db: Db, dataDir: string) {
    this.secrets = new ProviderSecrets(db, dataDir);
  }

  async get(deploymentId: string): Promise<string | undefined> {
    return this.secrets.get(deploymentId);
  }

  async set(deploymentId: string, value: string | null): Promise<void> {
    this.secrets.set(deploymentId, value);
  }
}
