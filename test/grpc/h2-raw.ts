/**
 * A raw gRPC-over-HTTP/2 client on node:http2 for the protocol edges that real clients never produce
 * (compressed flags, truncated frames, odd headers): it sends exactly the frames it is told and returns what
 * came back (response headers, messages, trailers, or the reset code).
 */
import * as http2 from 'node:http2';

/** What one raw call got back. */
export interface RawAnswer {
  /** Response HEADERS (":status", and grpc-status when trailers-only). */
  headers: http2.IncomingHttpHeaders;
  /** Trailers, when the response was not trailers-only. */
  trailers: http2.IncomingHttpHeaders;
  /** The response body (length-prefixed messages, not split). */
  body: Buffer;
  /** grpc-status and grpc-message from trailers, or from the headers of a trailers-only answer. */
  code: number | undefined;
  message: string | undefined;
  /** RST_STREAM code when the server reset the stream. */
  rstCode: number;
}

/** A message with a 5-octet prefix; `flag` 0 plain, 1 compressed (or anything else to test refusals). */
export function frame(msg: Uint8Array, flag = 0): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b[0] = flag;
  b.writeUInt32BE(msg.length, 1);
  Buffer.from(msg).copy(b, 5);
  return b;
}

/** Splits a response body into its messages. */
export function messages(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off + 5 <= body.length;) {
    const n = body.readUInt32BE(off + 1);
    out.push(body.subarray(off + 5, off + 5 + n));
    off += 5 + n;
  }
  return out;
}

/** Opens a session to `endpoint` ("127.0.0.1:port"). */
export function connect(endpoint: string): http2.ClientHttp2Session {
  const s = http2.connect(`http://${endpoint}`);
  s.on('error', () => {});
  return s;
}

/**
 * One call: HEADERS (`path`, gRPC's headers plus `extra`), then `chunks` as DATA (each its own write), then
 * END_STREAM unless `keepOpen`. Resolves when the stream closes, or after `timeoutMs` with what came so far.
 */
export function rawCall(
  session: http2.ClientHttp2Session,
  path: string,
  chunks: Buffer[],
  opts: { extra?: http2.OutgoingHttpHeaders; keepOpen?: boolean; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const req = session.request({
      ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...opts.extra,
    });
    const ans: RawAnswer = { headers: {}, trailers: {}, body: Buffer.alloc(0), code: undefined, message: undefined, rstCode: 0 };
    const parts: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ans.body = Buffer.concat(parts);
      const src = ans.trailers['grpc-status'] !== undefined ? ans.trailers : ans.headers;
      if (src['grpc-status'] !== undefined) ans.code = Number(src['grpc-status']);
      if (src['grpc-message'] !== undefined) ans.message = decodeURIComponent(String(src['grpc-message']));
      ans.rstCode = req.rstCode ?? 0;
      resolve(ans);
    };
    const timer = setTimeout(() => { finish(); req.close(); }, opts.timeoutMs ?? 10_000);
    req.on('response', (h) => (ans.headers = h));
    req.on('trailers', (t) => (ans.trailers = t));
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('error', () => {});
    req.on('close', finish);
    for (const c of chunks) req.write(c);
    if (!opts.keepOpen) req.end();
  });
}
