/** An RS256 key pair for `--auth-token jwt,…` made at test time in a tracked temp dir (no key is committed). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { trackTempDir } from './procs';

/** The key files (`pub`, `priv`: PEM paths) and the keys themselves. */
export interface JwtKeys { pub: string; priv: string; publicKey: KeyObject; privateKey: KeyObject }

/** Generates a 2048-bit RSA pair and writes it as PKCS#8 / SPKI PEM files, removed when the test process exits. */
export function makeJwtKeys(): JwtKeys {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-jwt-'));
  trackTempDir(dir);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const priv = path.join(dir, 'jwt.key');
  const pub = path.join(dir, 'jwt.pub');
  fs.writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { pub, priv, publicKey, privateKey };
}
