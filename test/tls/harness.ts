/**
 * Client helpers for the TLS tests: HTTPS requests over HTTP/1.1 (with a chosen ALPN offer or none) and HTTP/2,
 * a raw handshake probe that reports what the server accepted, and a readiness check for https members.
 */
import * as http2 from 'node:http2';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import * as fs from 'node:fs';
import type { CertPair } from './certs';
import { after } from 'node:test';
import type { ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';

/** What a client presents: the CA it trusts and optionally its own certificate. */
export interface ClientCreds { ca: string; cert?: CertPair; /** Skip server verification (self-signed, --auto-tls). */ insecure?: boolean }

function tlsOpts(c: ClientCreds): tls.ConnectionOptions {
  return {
    ...(c.insecure ? { rejectUnauthorized: false } : { ca: fs.readFileSync(c.ca) }),
    ...(c.cert ? { cert: fs.readFileSync(c.cert.cert), key: fs.readFileSync(c.cert.key) } : {}),
  };
}

/** An HTTP answer. */
export interface HttpAnswer { status: number; body: string; alpn: string | false | null; /** HTTP/2 only: the answer's header block. */ headers?: http2.IncomingHttpHeaders }

/**
 * GET or POST `url` over HTTP/1.1 on TLS, offering `alpn` (undefined: no ALPN extension at all). Rejects on a
 * handshake or connection error; a fresh connection every time (no agent). `firstChunk`: resolve with the first
 * chunk of the body and close (streams such as /v3/watch never end).
 */
export function httpsRequest(url: string, creds: ClientCreds, opts: { alpn?: string[]; body?: string; headers?: Record<string, string>; firstChunk?: boolean } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      ...tlsOpts(creds),
      // https.request passes TLS options through to tls.connect.
      agent: false,
      method: opts.body === undefined ? 'GET' : 'POST',
      ...({ ALPNProtocols: opts.alpn } as object),
      timeout: 10_000,
      headers: { ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      const done = (): void => resolve({ status: res.statusCode ?? 0, body, alpn: (res.socket as tls.TLSSocket).alpnProtocol });
      res.on('data', (d: string) => {
        body += d;
        if (opts.firstChunk === true) { done(); req.destroy(); }
      });
      res.on('end', done);
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** POST over plaintext HTTP/1.1 with exactly `headers` besides content-type (node:http adds no Accept). */
export function httpPost(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, timeout: 10_000, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** GET `path` over HTTP/2 on TLS (ALPN h2). */
export function h2Get(origin: string, path: string, creds: ClientCreds): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin, { ...tlsOpts(creds) });
    session.on('error', reject);
    const req = session.request({ ':path': path });
    let status = 0;
    let body = '';
    let headers: http2.IncomingHttpHeaders = {};
    req.setEncoding('utf8');
    req.on('response', (h) => { status = Number(h[':status']); headers = h; });
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const alpn = (session.socket as tls.TLSSocket).alpnProtocol;
      session.close();
      resolve({ status, body, alpn, headers });
    });
    req.on('error', (e) => { session.destroy(); reject(e); });
    req.setTimeout(10_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.end();
  });
}

/** Outcome of {@link probe}: the server answered an HTTP/1.1 request, or the connection failed with `error`. */
export interface ProbeResult {
  ok: boolean;
  error?: string;
  /** Subject CN of the certificate the server presented. */
  serverCn?: string;
  /** Serial number (hex, upper case, as Node prints it) of the certificate the server presented. */
  serverSerial?: string;
  protocol?: string | null;
  cipher?: string;
}

/**
 * Opens a TLS connection to `url`'s host:port with `extra` options, sends `GET /health` (ALPN http/1.1) and waits
 * for the first bytes of an answer. With TLS 1.3 a server refusing the client certificate only says so after the
 * client finished its side of the handshake, so "refused" means: no HTTP answer, an error or a close instead.
 */
export function probe(url: string, creds: ClientCreds, extra: tls.ConnectionOptions = {}): Promise<ProbeResult> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const out: ProbeResult = { ok: false };
    const sock = tls.connect({ host: u.hostname, port: Number(u.port), ...tlsOpts(creds), ALPNProtocols: ['http/1.1'], ...extra });
    const done = (r: Partial<ProbeResult>): void => { clearTimeout(t); sock.destroy(); resolve({ ...out, ...r }); };
    const t = setTimeout(() => done({ error: 'timeout' }), 10_000);
    sock.on('secureConnect', () => {
      const peer = sock.getPeerCertificate();
      const cn = peer.subject?.CN;
      out.serverCn = Array.isArray(cn) ? cn[0] : cn;
      out.serverSerial = peer.serialNumber;
      out.protocol = sock.getProtocol();
      out.cipher = sock.getCipher().name;
      sock.write(`GET /health HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (d: Buffer) => done({ ok: d.toString('latin1').startsWith('HTTP/1.1 ') }));
    sock.on('error', (e: NodeJS.ErrnoException) => done({ error: e.code ?? e.message }));
    sock.on('close', () => done({ error: out.error ?? 'closed' }));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A `ready` check for startServer: https GET /health answers 200 within `timeoutMs`; throws when the process exits. */
export function httpsReady(creds: ClientCreds, timeoutMs = 60_000): (h: ServerHandle) => Promise<void> {
  return async (h) => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!h.isRunning()) throw new Error('process exited');
      try {
        const a = await httpsRequest(`${h.clientUrl}/health`, creds, { alpn: ['http/1.1'] });
        if (a.status === 200) return;
        last = `${a.status} ${a.body}`;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(150);
    }
    throw new Error(`not serving https within ${timeoutMs} ms: ${last}`);
  };
}

/** etcdctl's TLS flags for `creds`. */
export function ctlTls(creds: ClientCreds): string[] {
  if (creds.insecure) return ['--insecure-transport=false', '--insecure-skip-tls-verify'];
  return [`--cacert=${creds.ca}`, ...(creds.cert ? [`--cert=${creds.cert.cert}`, `--key=${creds.cert.key}`] : [])];
}

/** What one test file started: servers to stop and clients to close once its tests are done. */
export interface FileResources { handles: ServerHandle[]; closers: Array<() => void> }

/** Registers an after() hook closing every closer, stopping every handle and killing leftover children. */
export function fileResources(): FileResources {
  const r: FileResources = { handles: [], closers: [] };
  after(async () => {
    for (const c of r.closers) c();
    await Promise.all(r.handles.map((h) => h.stop()));
    await killAllChildren();
  });
  return r;
}

/** The `credentials` option of the etcd3 npm client for `c` (which must carry a certificate). */
export function etcd3Credentials(c: ClientCreds): { rootCertificate: Buffer; certChain: Buffer; privateKey: Buffer } {
  return { rootCertificate: fs.readFileSync(c.ca), certChain: fs.readFileSync(c.cert!.cert), privateKey: fs.readFileSync(c.cert!.key) };
}
