/**
 * Test PKI made with openssl at test time in a temp dir (never committed): two CAs ("good" and "other"), EC P-256
 * keys (fast to generate), leaves valid for 127.0.0.1 and localhost with server and client usages (etcd peers use
 * one certificate both ways). Everything is removed when the test process exits (procs.ts).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trackTempDir } from '../helpers/procs';

/** A certificate and its key on disk. */
export interface CertPair { cert: string; key: string }

/** A CA able to sign leaves. */
export interface TestCa extends CertPair { name: string }

/** The temp dir and the CAs of one test file. */
export interface TestPki {
  dir: string;
  good: TestCa;
  other: TestCa;
  /**
   * Issues `name`.crt/.key signed by `ca` with subject CN=`cn` (SAN 127.0.0.1, localhost); cn '' = no CN
   * (O=etcetera-test). `extendedKeyUsage`: openssl's value (default serverAuth,clientAuth).
   */
  issue(name: string, cn: string, ca?: TestCa, extendedKeyUsage?: string): CertPair;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): TestCa {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { name, cert, key };
}

/** Creates a fresh PKI under a tracked temp dir. */
export function makePki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-tls-'));
  trackTempDir(dir);
  const good = makeCa(dir, 'ca');
  const other = makeCa(dir, 'other-ca');
  const extFile = (eku: string): string => {
    const file = path.join(dir, `leaf-${eku.replace(/[^A-Za-z]/g, '-')}.ext`);
    fs.writeFileSync(file, `subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=${eku}\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n`);
    return file;
  };
  return {
    dir,
    good,
    other,
    issue(name: string, cn: string, ca: TestCa = good, extendedKeyUsage = 'serverAuth,clientAuth'): CertPair {
      const cert = path.join(dir, `${name}.crt`);
      const key = path.join(dir, `${name}.key`);
      const csr = path.join(dir, `${name}.csr`);
      openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', cn === '' ? '/O=etcetera-test' : `/CN=${cn}`], dir);
      openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
        '-days', '2', '-extfile', extFile(extendedKeyUsage), '-out', cert], dir);
      return { cert, key };
    },
  };
}
