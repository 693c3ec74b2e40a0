/**
 * A member certificate made for serverAuth only (no clientAuth extended key usage) on a TLS client port with
 * --client-cert-auth, differential against etcd 3.4. etcd's JSON gateway is a gRPC client of its own member and
 * presents that certificate, which the port's client verification refuses ("certificate specifies an incompatible
 * key usage", logged as a rejected connection): every /v3/ call answers 503 Unavailable (unary, server-streaming
 * and watch alike) while gRPC clients, /health and /version work, and the gateway of a plaintext client URL on the
 * same member (dialled without TLS) works too. A trusted CA without --client-cert-auth verifies clients as well (etcd
 * 3.4's TLSInfo.ServerConfig), so it fails the same way; with neither, the same certificate serves the gateway.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerKind } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { freePort } from '../helpers/ports';
import { makePki, type TestPki } from './certs';
import { ctlTls, fileResources, httpsReady, httpsRequest, httpPost, type ClientCreds } from './harness';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const { handles } = fileResources();
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const INCOMPATIBLE = 'certificate specifies an incompatible key usage';

/**
 * `<status> <error or value>` of a gateway answer. grpc-go reports the refused dial either as `connection closed` or,
 * right after a failed attempt, as `connection error: desc = "transport: …"` naming the ports: both read as the former.
 */
function summary(status: number, body: string): string {
  let parsed: Record<string, unknown>;
  try { parsed = JSON.parse(body) as Record<string, unknown>; } catch { return `${status} ${body.trim()}`; }
  const err = parsed.error === undefined ? undefined : String(parsed.error);
  if (err !== undefined) return `${status} code=${String(parsed.code)} ${err.startsWith('connection error: desc = "transport: ') ? 'connection closed' : err}`;
  const kvs = parsed.kvs as Array<{ value: string }> | undefined;
  return `${status} ${kvs ? Buffer.from(kvs[0]!.value, 'base64').toString() : Object.keys(parsed).sort().join(',')}`;
}

/** How the client port checks client certificates: the flag, a trusted CA alone (etcd verifies then too), or not. */
type Verify = 'client-cert-auth' | 'trusted-ca' | 'none';

async function scenario(kind: ServerKind, pki: TestPki, verify: Verify): Promise<Record<string, string>> {
  const presentsCert = verify !== 'none';
  const client: ClientCreds = { ca: pki.good.cert, cert: pki.issue(`${kind}-${verify}-client`, 'client') };
  const server = pki.issue(`${kind}-${verify}-server`, 'server', pki.good, 'serverAuth');
  const [tlsPort, plainPort] = [await freePort(), await freePort()];
  const urls = `https://127.0.0.1:${tlsPort},http://127.0.0.1:${plainPort}`;
  const h = await startServer(kind, {
    clientScheme: 'https',
    clientPort: tlsPort,
    extraArgs: [`--cert-file=${server.cert}`, `--key-file=${server.key}`,
      ...(verify === 'client-cert-auth' ? ['--client-cert-auth'] : []), ...(verify !== 'none' ? [`--trusted-ca-file=${pki.good.cert}`] : []),
      `--listen-client-urls=${urls}`, `--advertise-client-urls=${urls}`],
    ready: httpsReady(presentsCert ? client : { ca: pki.good.cert }),
  });
  handles.push(h);
  const creds = presentsCert ? client : { ca: pki.good.cert };
  const out: Record<string, string> = {};
  const put = await etcdctl(h.clientUrl, [...ctlTls(creds), 'put', '/k', 'v']);
  out.grpcPut = put.code === 0 ? put.stdout.trim() : put.stderr;
  const post = async (path: string, body: string): Promise<string> => {
    const a = await httpsRequest(`${h.clientUrl}${path}`, creds, { alpn: ['http/1.1'], body });
    return summary(a.status, a.body);
  };
  out.range = await post('/v3/kv/range', JSON.stringify({ key: b64('/k') }));
  out.put = await post('/v3/kv/put', JSON.stringify({ key: b64('/k2'), value: b64('w') }));
  out.leaseGrant = await post('/v3/lease/grant', JSON.stringify({ TTL: 60 }));
  out.status = await post('/v3/maintenance/status', '{}');
  // The watch is read to its first chunk only: a working gateway keeps the stream open.
  out.watch = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${h.clientUrl}/v3/watch`, creds, { alpn: ['http/1.1'], body: JSON.stringify({ create_request: { key: b64('/k') } }), firstChunk: true });
    req.then((a) => resolve(a.status === 200 ? `${a.status} ${a.body.includes('"created":true') ? 'created' : a.body}` : summary(a.status, a.body)), reject);
  });
  out.health = String((await httpsRequest(`${h.clientUrl}/health`, creds, { alpn: ['http/1.1'] })).status);
  const plain = await httpPost(`http://127.0.0.1:${plainPort}/v3/kv/range`, JSON.stringify({ key: b64('/k') }));
  out.plainRange = summary(plain.status, plain.body);
  out.logged = h.output().includes(INCOMPATIBLE) ? 'incompatible key usage' : 'nothing';
  return out;
}

for (const verify of ['client-cert-auth', 'trusted-ca'] as const) {
test(`JSON gateway with a member certificate without clientAuth usage: refused when clients are verified (${verify}) as etcd 3.4`, { skip, timeout: 180_000 }, async () => {
  const pki = makePki();
  const [etcd, etcetera] = await Promise.all([scenario('etcd', pki, verify), scenario('etcetera', pki, verify)]);
  const refused = '503 code=14 connection closed';
  assert.deepEqual(etcd, {
    grpcPut: 'OK',
    range: refused,
    put: refused,
    leaseGrant: refused,
    status: refused,
    watch: refused,
    health: '200',
    plainRange: '200 v',
    logged: 'incompatible key usage',
  });
  assert.deepEqual(etcetera, etcd);
});
}

test('JSON gateway with a member certificate without clientAuth usage: served when client certificates are not verified', { skip, timeout: 180_000 }, async () => {
  const pki = makePki();
  const [etcd, etcetera] = await Promise.all([scenario('etcd', pki, 'none'), scenario('etcetera', pki, 'none')]);
  assert.deepEqual(etcd, {
    grpcPut: 'OK',
    range: '200 v',
    put: '200 header',
    leaseGrant: '200 ID,TTL,header',
    status: '200 dbSize,dbSizeInUse,header,leader,raftAppliedIndex,raftIndex,raftTerm,version',
    watch: '200 created',
    health: '200',
    plainRange: '200 v',
    logged: 'nothing',
  });
  assert.deepEqual(etcetera, etcd);
});
