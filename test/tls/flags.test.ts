/**
 * The TLS flags through the three ways etcd takes them: command line, ETCD_* variables, and the config file's
 * `client-transport-security` / `peer-transport-security` sections plus `cipher-suites` (etcd 3.4 embed configYAML).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseServerConfig, FlagError } from '../../src/cli/flags';

const EXPECTED = {
  clientTls: { certFile: 'c.crt', keyFile: 'c.key', trustedCaFile: 'ca.crt', clientCertAuth: true, allowedCn: '', selfCert: false },
  peerTls: { certFile: 'p.crt', keyFile: 'p.key', trustedCaFile: 'pca.crt', clientCertAuth: true, allowedCn: 'member', selfCert: false },
  clientAutoTls: true,
  peerAutoTls: true,
  cipherSuites: ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
};
const pick = (c: ReturnType<typeof parseServerConfig>): unknown => ({
  clientTls: c.clientTls, peerTls: c.peerTls, clientAutoTls: c.clientAutoTls, peerAutoTls: c.peerAutoTls, cipherSuites: c.cipherSuites,
});

test('TLS flags: command line, ETCD_* variables and config-file sections give the same configuration', () => {
  const flags = parseServerConfig([
    '--cert-file=c.crt', '--key-file=c.key', '--trusted-ca-file=ca.crt', '--client-cert-auth', '--auto-tls',
    '--peer-cert-file=p.crt', '--peer-key-file=p.key', '--peer-trusted-ca-file=pca.crt', '--peer-client-cert-auth=true', '--peer-auto-tls',
    '--peer-cert-allowed-cn=member', `--cipher-suites=${EXPECTED.cipherSuites.join(',')}`,
  ], {});
  assert.deepEqual(pick(flags), EXPECTED);

  const env = parseServerConfig([], {
    ETCD_CERT_FILE: 'c.crt', ETCD_KEY_FILE: 'c.key', ETCD_TRUSTED_CA_FILE: 'ca.crt', ETCD_CLIENT_CERT_AUTH: 'true', ETCD_AUTO_TLS: 'true',
    ETCD_PEER_CERT_FILE: 'p.crt', ETCD_PEER_KEY_FILE: 'p.key', ETCD_PEER_TRUSTED_CA_FILE: 'pca.crt', ETCD_PEER_CLIENT_CERT_AUTH: 'true',
    ETCD_PEER_AUTO_TLS: 'true', ETCD_PEER_CERT_ALLOWED_CN: 'member', ETCD_CIPHER_SUITES: EXPECTED.cipherSuites.join(','),
  });
  assert.deepEqual(pick(env), EXPECTED);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-tls-flags-'));
  try {
    const file = path.join(dir, 'etcd.yml');
    fs.writeFileSync(file, [
      'client-transport-security:',
      '  cert-file: c.crt', '  key-file: c.key', '  trusted-ca-file: ca.crt', '  client-cert-auth: true', '  auto-tls: true',
      'peer-transport-security:',
      '  cert-file: p.crt', '  key-file: p.key', '  trusted-ca-file: pca.crt', '  client-cert-auth: true', '  auto-tls: true', '  allowed-cn: member',
      'cipher-suites:', ...EXPECTED.cipherSuites.map((s) => `  - ${s}`),
      '',
    ].join('\n'));
    assert.deepEqual(pick(parseServerConfig([`--config-file=${file}`], {})), EXPECTED);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS booleans follow Go\'s strconv.ParseBool', () => {
  assert.equal(parseServerConfig(['--client-cert-auth=1'], {}).clientTls.clientCertAuth, true);
  assert.equal(parseServerConfig(['--client-cert-auth=F'], {}).clientTls.clientCertAuth, false);
  assert.throws(() => parseServerConfig(['--client-cert-auth=maybe'], {}), (e: unknown) => e instanceof FlagError && /invalid boolean value "maybe" for -client-cert-auth/.test(e.message));
});
