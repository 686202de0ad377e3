import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { tempDir } from './server.js';

/**
 * A throwaway certificate authority and a certificate for 127.0.0.1/localhost, made with the
 * openssl CLI (Debian's openssl package): what a provider's ingress would present, signed by a
 * CA that only the processes of a test trust (NODE_EXTRA_CA_CERTS / an explicit `ca`).
 */
export interface TestTls {
  caFile: string;
  ca: string;
  key: string;
  cert: string;
}

let made: TestTls | undefined;

export function testTls(): TestTls {
  if (made) return made;
  const dir = tempDir('panthers-tls-');
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=Panthers Test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('leaf.key'), '-out', f('leaf.csr')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('leaf.pem')]);
  made = { caFile: f('ca.pem'), ca: fs.readFileSync(f('ca.pem'), 'utf8'), key: fs.readFileSync(f('leaf.key'), 'utf8'), cert: fs.readFileSync(f('leaf.pem'), 'utf8') };
  return made;
}
