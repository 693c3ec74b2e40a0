/**
 * --trusted-ca-file without --client-cert-auth on a TLS client port, differential against etcd 3.4: the port still
 * requires and verifies client certificates at the handshake (etcd's TLSInfo.ServerConfig asks for them whenever a
 * trusted CA is given), but a certificate's CN never acts as an auth user (that needs the flag): with auth enabled,
 * gRPC and the JSON gateway without a token answer `user name is empty`, and the gateway does not refuse
 * certificates with a CN as it does under --client-cert-auth.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerKind } from '../helpers/servers';
import { etcdctl, etcdctlError } from '../helpers/etcdctl';
import { makePki } from './certs';
import { ctlTls, fileResources, httpsReady, httpsRequest, probe, type ClientCreds } from './harness';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const { handles } = fileResources();

async function scenario(kind: ServerKind): Promise<Record<string, string>> {
  const pki = makePki();
  const root: ClientCreds = { ca: pki.good.cert, cert: pki.issue(`${kind}-root`, 'root') };
  const stranger: ClientCreds = { ca: pki.good.cert, cert: pki.issue(`${kind}-stranger`, 'root', pki.other) };
  const server = pki.issue(`${kind}-server`, 'server');
  const h = await startServer(kind, {
    clientScheme: 'https',
    extraArgs: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, `--trusted-ca-file=${pki.good.cert}`],
    ready: httpsReady(root),
  });
  handles.push(h);
  const out: Record<string, string> = {};
  const seen = (p: { ok: boolean }): string => (p.ok ? 'answered' : 'refused');
  out.noCertificate = seen(await probe(h.clientUrl, { ca: pki.good.cert }));
  out.otherCa = seen(await probe(h.clientUrl, stranger));
  out.goodCertificate = seen(await probe(h.clientUrl, root));
  const ctl = async (args: string[]): Promise<string> => {
    const r = await etcdctl(h.clientUrl, [...ctlTls(root), ...args]);
    return r.code === 0 ? r.stdout.trim() : etcdctlError(r.stderr);
  };
  for (const args of [['put', '/k', 'v'], ['user', 'add', 'root:rootpw'], ['role', 'add', 'root'], ['user', 'grant-role', 'root', 'root'], ['auth', 'enable']]) {
    out[args.join(' ')] = await ctl(args);
  }
  out.getAsCn = await ctl(['get', '/k', '--print-value-only']);
  out.getWithUser = await ctl(['--user=root:rootpw', 'get', '/k', '--print-value-only']);
  const gw = await httpsRequest(`${h.clientUrl}/v3/kv/range`, root, { alpn: ['http/1.1'], body: JSON.stringify({ key: Buffer.from('/k').toString('base64') }) });
  out.gatewayAsCn = `${gw.status} ${String((JSON.parse(gw.body) as { error?: string }).error)}`;
  return out;
}

test('--trusted-ca-file alone: client certificates required at the handshake, their CN not an auth user, as etcd 3.4', { skip, timeout: 120_000 }, async () => {
  const [etcd, etcetera] = await Promise.all([scenario('etcd'), scenario('etcetera')]);
  assert.deepEqual(etcd, {
    noCertificate: 'refused',
    otherCa: 'refused',
    goodCertificate: 'answered',
    'put /k v': 'OK',
    'user add root:rootpw': 'User root created',
    'role add root': 'Role root created',
    'user grant-role root root': 'Role root is granted to user root',
    'auth enable': 'Authentication Enabled',
    getAsCn: 'InvalidArgument | Error: etcdserver: user name is empty',
    getWithUser: 'v',
    gatewayAsCn: '400 etcdserver: user name is empty',
  });
  assert.deepEqual(etcetera, etcd);
});
