// Test helper for the SDK suites: prints an access token for an existing session that expired a
// minute ago, signed with the server's own key (read from its data dir), so a test can make the
// real server answer TOKEN_EXPIRED without waiting an hour.
// Usage: node mint-expired-token.mjs <data_dir> <wallet> <nft_token_id> <session_id>
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';

const [dataDir, sub, nft, sid] = process.argv.slice(2);
if (!dataDir || !sub || !nft || !sid) {
  console.error('usage: mint-expired-token.mjs <data_dir> <wallet> <nft_token_id> <session_id>');
  process.exit(2);
}
const stored = JSON.parse(fs.readFileSync(path.join(dataDir, 'jwt-signing-key.json'), 'utf8'));
const key = await jose.importJWK(stored.privateJwk, 'EdDSA');
const now = Math.floor(Date.now() / 1000);
const token = await new jose.SignJWT({ nft, sid })
  .setProtectedHeader({ alg: 'EdDSA', kid: stored.kid, typ: 'JWT' })
  .setSubject(sub)
  .setIssuer('secret-panthers')
  .setAudience('orchestrator')
  .setIssuedAt(now - 3700)
  .setExpirationTime(now - 60)
  .sign(key);
process.stdout.write(token + '\n');
