/**
 * One member serving both an https:// and an http:// client URL with --client-cert-auth and auth enabled,
 * differential against etcd 3.4. etcd's JSON gateway on the TLS URL is a gRPC client of its member presenting the
 * member's own certificate, so a token-less request there acts as that certificate's CN; on the plaintext URL the
 * gateway dials its member without TLS, so the same request carries no identity (`user name is empty`). Plaintext
 * gRPC has no certificate either. The member's certificate CN is a user with read permission on /app/, so a
 * request that wrongly took the CN would be answered with the value instead of an error.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerKind } from '../helpers/servers';
import { etcdctl, etcdctlError } from '../helpers/etcdctl';
import { freePort } from '../helpers/ports';
import { makePki } from './certs';
import { ctlTls, fileResources, httpsReady, httpsRequest, httpPost, type ClientCreds } from './harness';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const { handles } = fileResources();
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** `<status> <error or value>` of a gateway answer (the header differs per member). */
function summary(status: number, body: string): string {
  let parsed: Record<string, unknown>;
  try { parsed = JSON.parse(body) as Record<string, unknown>; } catch { return `${status} ${body}`; }
  const kvs = parsed.kvs as Array<{ value: string }> | undefined;
  return `${status} ${String(parsed.error ?? parsed.message ?? (kvs ? Buffer.from(kvs[0]!.value, 'base64').toString() : parsed.token !== undefined ? 'token' : ''))}`;
}

async function scenario(kind: ServerKind): Promise<Record<string, string>> {
  const pki = makePki();
  const root: ClientCreds = { ca: pki.good.cert, cert: pki.issue(`${kind}-root`, 'root') };
  const noCn: ClientCreds = { ca: pki.good.cert, cert: pki.issue(`${kind}-nocn`, '') };
  const server = pki.issue(`${kind}-server`, 'server');
  const [tlsPort, plainPort] = [await freePort(), await freePort()];
  const urls = `https://127.0.0.1:${tlsPort},http://127.0.0.1:${plainPort}`;
  const h = await startServer(kind, {
    clientScheme: 'https',
    clientPort: tlsPort,
    // The helper's https client URL plus a plaintext one (the last --listen-client-urls wins, for both systems).
    extraArgs: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, '--client-cert-auth', `--trusted-ca-file=${pki.good.cert}`,
      `--listen-client-urls=${urls}`, `--advertise-client-urls=${urls}`],
    ready: httpsReady(root),
  });
  handles.push(h);
  const plainUrl = `http://127.0.0.1:${plainPort}`;
  const ctl = async (args: string[]): Promise<void> => {
    const r = await etcdctl(h.clientUrl, [...ctlTls(root), ...args]);
    assert.equal(r.code, 0, `${kind} etcdctl ${args.join(' ')}: ${r.stderr}`);
  };
  await ctl(['put', '/app/k', 'v']);
  for (const args of [['user', 'add', 'root', '--new-user-password=rootpw'], ['role', 'add', 'root'], ['user', 'grant-role', 'root', 'root'],
    ['user', 'add', 'server', '--new-user-password=spw'], ['role', 'add', 'gw'], ['role', 'grant-permission', 'gw', 'read', '/app/', '--prefix=true'],
    ['user', 'grant-role', 'server', 'gw'], ['auth', 'enable']]) await ctl(args);
  const range = JSON.stringify({ key: b64('/app/k') });
  const put = JSON.stringify({ key: b64('/app/k'), value: b64('w') });
  const tlsPost = async (path: string, body: string, headers: Record<string, string> = {}): Promise<string> => {
    const a = await httpsRequest(`${h.clientUrl}${path}`, noCn, { alpn: ['http/1.1'], body, headers });
    return summary(a.status, a.body);
  };
  // node:http sends no Accept header unless told (with one, etcd ignores the CN on its TLS gateway too).
  const plainPost = async (path: string, body: string, headers: Record<string, string> = {}): Promise<string> => {
    const a = await httpPost(`${plainUrl}${path}`, body, headers);
    return summary(a.status, a.body);
  };
  const out: Record<string, string> = {};
  out.tlsRange = await tlsPost('/v3/kv/range', range);
  out.plainRange = await plainPost('/v3/kv/range', range);
  out.plainPut = await plainPost('/v3/kv/put', put);
  out.plainUserList = await plainPost('/v3/auth/user/list', '{}');
  const login = await httpPost(`${plainUrl}/v3/auth/authenticate`, JSON.stringify({ name: 'server', password: 'spw' }));
  out.plainLogin = summary(login.status, login.body);
  const token = String((JSON.parse(login.body) as { token?: string }).token);
  out.plainRangeWithToken = await plainPost('/v3/kv/range', range, { authorization: token });
  // Plaintext gRPC: no certificate, no token.
  const plainCtl = async (args: string[]): Promise<string> => {
    const r = await etcdctl(plainUrl, args);
    return r.code === 0 ? r.stdout.trim() : etcdctlError(r.stderr);
  };
  out.grpcPlainGet = await plainCtl(['get', '/app/k', '--print-value-only']);
  out.grpcPlainUserList = await plainCtl(['user', 'list']);
  out.grpcPlainGetAsServer = await plainCtl(['--user=server:spw', 'get', '/app/k', '--print-value-only']);
  return out;
}

test('https and http client URLs on one member with --client-cert-auth: only the TLS gateway acts as the member certificate CN, as in etcd 3.4', { skip, timeout: 180_000 }, async () => {
  const [etcd, etcetera] = await Promise.all([scenario('etcd'), scenario('etcetera')]);
  assert.deepEqual(etcd, {
    tlsRange: '200 v',
    plainRange: '400 etcdserver: user name is empty',
    plainPut: '400 etcdserver: user name is empty',
    plainUserList: '400 etcdserver: user name is empty',
    plainLogin: '200 token',
    plainRangeWithToken: '200 v',
    grpcPlainGet: 'InvalidArgument | Error: etcdserver: user name is empty',
    grpcPlainUserList: 'InvalidArgument | Error: etcdserver: user name is empty',
    grpcPlainGetAsServer: 'v',
  });
  assert.deepEqual(etcetera, etcd);
});
