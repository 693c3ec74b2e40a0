/**
 * HTTP/2 on an https --listen-metrics-urls URL, differential against etcd 3.4: etcd's metrics listener negotiates h2
 * and serves only /metrics and /health there (404 for /version, the gateway, v2), without the client port's CORS
 * headers, as it does over HTTP/1.1. etcetera used to hand such connections to the full client-port app.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startServer, hasEtcd, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { makePki } from '../tls/certs';
import { h2Get, httpsReady, type ClientCreds } from '../tls/harness';

const skip = hasEtcd() ? false : NO_ETCD;
const handles: ServerHandle[] = [];
after(async () => { await Promise.all(handles.map((h) => h.stop())); });

/** Status, ALPN, header set (without date, metrics bodies' length) and body of one h2 GET. */
async function seen(metricsUrl: string, path: string, creds: ClientCreds): Promise<unknown> {
  const a = await h2Get(metricsUrl, path, creds);
  const headers = Object.entries(a.headers ?? {})
    .filter(([k]) => k !== 'date' && !(path === '/metrics' && k === 'content-length'))
    .map(([k, v]) => `${k}: ${String(v)}`)
    .sort();
  return { status: a.status, alpn: a.alpn, headers, body: path === '/metrics' ? a.body.includes('# TYPE etcd_server_has_leader gauge') : a.body };
}

test('HTTP/2 on an https metrics URL serves /metrics and /health only, as etcd 3.4', { skip, timeout: 120_000 }, async () => {
  const pki = makePki();
  const creds: ClientCreds = { ca: pki.good.cert };
  const server = pki.issue('server', 'server');
  const paths = ['/health', '/metrics', '/version', '/v2/keys/foo', '/v3/kv/range', '/nope'];
  const views = await Promise.all((['etcd', 'etcetera'] as ServerKind[]).map(async (kind) => {
    const h = await startServer(kind, {
      clientScheme: 'https',
      extraArgs: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, '--enable-v2=true'],
      ready: httpsReady(creds),
    });
    handles.push(h);
    const out: unknown[] = [];
    for (const p of paths) out.push(await seen(h.metricsUrl, p, creds));
    return out;
  }));
  for (const [i, p] of paths.entries()) assert.deepEqual(views[1]![i], views[0]![i], `${p}\netcd:     ${JSON.stringify(views[0]![i])}\netcetera: ${JSON.stringify(views[1]![i])}`);
});
