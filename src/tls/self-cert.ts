/**
 * `--auto-tls` / `--peer-auto-tls`: a self-signed certificate under the data dir (etcd: transport.SelfCert, into
 * <data-dir>/fixtures/client and <data-dir>/fixtures/peer). An existing pair is reused, as etcd does. The key is
 * ECDSA P-256 from node:crypto, the certificate is built with @peculiar/x509: organization "etcd", valid one year,
 * server (and client) authentication, the listen URLs' hosts as IP or DNS subject alternative names.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isIP } from 'node:net';
import { webcrypto, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Validity of a generated certificate, ms (etcd: 365 days). */
export const SELF_CERT_VALIDITY_MS = 365 * 24 * 3600 * 1000;

/** Paths of a self-signed pair. */
export interface SelfCertFiles {
  certFile: string;
  keyFile: string;
}

/**
 * Returns `dir`/cert.pem and `dir`/key.pem, generating them when either is missing. `hosts` are URL hosts
 * (brackets and ports are stripped). `clientAuth` adds the client-authentication usage (peer certificates are
 * used in both directions). Throws on a file-system error.
 */
export async function selfCert(dir: string, hosts: readonly string[], clientAuth: boolean): Promise<SelfCertFiles> {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) return { certFile, keyFile };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const names = [...new Set(hosts.map((h) => h.replace(/^\[|\]$/g, '')))].filter((h) => h !== '');
  const san = names.map((h) => ({ type: isIP(h) === 0 ? 'dns' as const : 'ip' as const, value: h }));
  const now = Date.now();
  const usages = [x509.ExtendedKeyUsage.serverAuth, ...(clientAuth ? [x509.ExtendedKeyUsage.clientAuth] : [])];
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + randomBytes(15).toString('hex'),
    name: 'O=etcd',
    notBefore: new Date(now),
    notAfter: new Date(now + SELF_CERT_VALIDITY_MS),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(usages),
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...(san.length > 0 ? [new x509.SubjectAlternativeNameExtension(san)] : []),
    ],
  }, webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1]);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  fs.writeFileSync(keyFile, keyPem, { mode: 0o600 });
  fs.writeFileSync(certFile, cert.toString('pem') + '\n', { mode: 0o644 });
  return { certFile, keyFile };
}
