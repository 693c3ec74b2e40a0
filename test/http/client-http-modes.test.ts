/**
 * The client port's two ways of serving HTTP/1 give the same answers: in process over Node's parser (the default,
 * src/api/http/node-http1.ts) and piped to the uWebSockets.js app on its loopback port (`ETCETERA_CLIENT_HTTP=uws`).
 * Two members, one per mode (`--enable-v2=true`), get the same requests — v2 writes and reads with their errors,
 * the JSON gateway, /health, /version, unknown paths, wrong methods, HEAD; status, Content-Type, Allow and body
 * are compared (indexes and IDs, which differ between members, masked). In process, a body arriving in pieces and
 * requests pipelined on one raw connection are answered in order.
 */
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { startEtcetera, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { request, type HttpAnswer } from '../gateway/http';

after(killAllChildren);

let inProcess: ServerHandle;
let piped: ServerHandle;

before(async () => {
  [inProcess, piped] = await Promise.all([
    startEtcetera({ extraArgs: ['--enable-v2=true'] }),
    startEtcetera({ extraArgs: ['--enable-v2=true'], env: { ETCETERA_CLIENT_HTTP: 'uws' } }),
  ]);
});

after(async () => {
  await inProcess?.stop();
  await piped?.stop();
});

const mask = (s: string): string =>
  s
    .replace(/"(modifiedIndex|createdIndex|index)":\d+/g, '"$1":<n>')
    .replace(/"(cluster_id|member_id|revision|raft_term|ID|id)":"?[0-9a-f]+"?/g, '"$1":<id>')
    .replace(/"(etcdserver|etcdcluster)":"[^"]*"/g, '"$1":<v>');

function view(a: HttpAnswer): unknown {
  return { status: a.status, type: a.headers['content-type'], allow: a.headers['allow'], etcdIndex: a.headers['x-etcd-index'] !== undefined, body: mask(a.body) };
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JSON_CT = { 'content-type': 'application/json' };

test('in-process HTTP/1 and the piped uWS app answer the same requests alike', async () => {
  const steps: Array<[string, string, string | undefined, Record<string, string>]> = [
    ['PUT', '/v2/keys/modes/a', 'value=1', FORM],
    ['PUT', '/v2/keys/modes/a', 'value=%3Cb%3E', FORM],
    ['GET', '/v2/keys/modes/a', undefined, {}],
    ['HEAD', '/v2/keys/modes/a', undefined, {}],
    ['GET', '/v2/keys/modes/missing', undefined, {}],
    ['PATCH', '/v2/keys/modes/a', undefined, {}],
    ['POST', '/v2/keys/modes/q', 'value=x', FORM],
    ['GET', '/v2/keys/modes?recursive=true&sorted=true', undefined, {}],
    ['POST', '/v3/kv/put', '{"key":"Zm9v","value":"YmFy"}', JSON_CT],
    ['POST', '/v3/kv/range', '{"key":"Zm9v"}', JSON_CT],
    ['POST', '/v3/kv/range', '{"key":', JSON_CT],
    ['GET', '/v3/kv/range', undefined, {}],
    ['GET', '/health', undefined, {}],
    ['GET', '/version', undefined, {}],
    ['GET', '/nope', undefined, {}],
  ];
  for (const [method, path, body, headers] of steps) {
    const [a, b] = await Promise.all([request(inProcess.clientUrl, method, path, body, headers), request(piped.clientUrl, method, path, body, headers)]);
    assert.deepEqual(view(a), view(b), `${method} ${path}\nin process: ${a.status} ${a.body}\npiped:      ${b.status} ${b.body}`);
  }
  const stats = JSON.parse((await request(inProcess.clientUrl, 'GET', '/v2/stats/self')).body) as { state: string };
  assert.equal(stats.state, 'StateLeader');
});

/**
 * Sends the pieces of `raw` on one connection 20 ms apart, then `after` once the first answer arrived, and reads
 * until `answers` HTTP answers (Content-Length framed) arrived.
 */
function rawExchange(base: string, raw: string[], after: string, answers: number): Promise<string[]> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    let text = '';
    let afterSent = false;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no ${answers} answers in 30 s: ${text}`)); }, 30_000);
    sock.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      const bodies: string[] = [];
      let rest = text;
      for (;;) {
        const head = rest.indexOf('\r\n\r\n');
        if (head < 0) break;
        const len = /content-length: *(\d+)/i.exec(rest.slice(0, head));
        if (!len) break;
        const end = head + 4 + Number(len[1]);
        if (rest.length < end) break;
        bodies.push(`${rest.slice(0, rest.indexOf('\r\n'))} ${rest.slice(head + 4, end)}`);
        rest = rest.slice(end);
      }
      if (bodies.length >= 1 && !afterSent) {
        afterSent = true;
        sock.write(after);
      }
      if (bodies.length >= answers) {
        clearTimeout(timer);
        sock.destroy();
        resolve(bodies);
      }
    });
    sock.on('error', reject);
    // The pieces go out apart, so a request and its body arrive in several reads.
    void (async () => {
      for (const piece of raw) {
        sock.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  });
}

// In process only: the piped uWS app leaves requests pipelined behind an unfinished one unanswered (seen here).
test('in process: a body in pieces, then two requests pipelined on the same connection, answered in order', async () => {
  const body = 'value=piecewise';
  const raw = [
    `PUT /v2/keys/modes/p HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\nvalue=`,
    'piecewise',
  ];
  const a = await rawExchange(inProcess.clientUrl, raw, 'GET /v2/keys/modes/p HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n', 3);
  assert.match(a[0]!, /^HTTP\/1\.1 201 Created .*"value":"piecewise"/);
  assert.match(a[1]!, /^HTTP\/1\.1 200 OK .*"action":"get".*"value":"piecewise"/);
  assert.match(a[2]!, /^HTTP\/1\.1 200 OK \{"health":"true"/);
});
