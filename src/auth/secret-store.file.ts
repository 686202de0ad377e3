import fs from 'node:fs';
import path from 'node:path';
import type { SecretStore } from './secret-store.js';

/** SecretStore in the data dir: one file per name, mode 0600, never overwritten (flag wx). */
export class FileSecretStore implements SecretStore {
  constructor(private readonly dataDir: string) {}

  async getOrCreate(name: string, make: () => Promise<Buffer> | Buffer): Promise<Buffer> {
    const file = path.join(this.dataDir, name);
    if (fs.existsSync(file)) return fs.readFileSync(file);
    const value = await make();
    fs.mkdirSync(this.dataDir, { recursive: true });
    try {
      fs.writeFileSync(file, value, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file);
      throw e;
    }
    return value;
  }
}
