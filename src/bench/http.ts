/**
 * HTTP load for `etcetera-bench gateway-put` / `gateway-range` (etcd's v3 JSON gateway: `POST /v3/kv/put`,
 * `POST /v3/kv/range`) and `v2-set` / `v2-get` (etcd's v2 keys API: `PUT /v2/keys/<key>` with a form-encoded
 * `value`, `GET /v2/keys/<key>`) driven by autocannon, reported in etcd's benchmark layout (the same Summary as the gRPC
 * commands: every response's latency is kept, so percentiles and the histogram are exact, not autocannon's
 * millisecond buckets). A non-2xx answer or a transport error counts as failed, by status line or message.
 */
import autocannon from 'autocannon';
import { sortedCopy, summarize, type Summary } from './stats';
import { benchKey } from './wire';

/** One HTTP benchmark run. */
export interface HttpBenchOptions {
  /** host:port (or http://host:port) of the client URL. */
  endpoint: string;
  /** HTTP connections (etcd's --conns). */
  conns: number;
  /** Requests to send (--total). */
  total: number;
  /** Request path, e.g. "/v3/kv/put"; a function gives the path of request number `i` (0-based). */
  path: string | ((i: number) => string);
  /** The body of request number `i` (0-based); absent: no body. */
  body?(i: number): string;
  /** HTTP method (default POST). */
  method?: 'POST' | 'PUT' | 'GET';
  /** Content-Type of the bodies (default application/json). */
  contentType?: string;
}

/** The JSON body of the i-th put: key as etcd's benchmark makes it (sequential or random in the key space). */
export function putBodies(keySize: number, value: Uint8Array, keySpace: number, sequential: boolean): (i: number) => string {
  const v = Buffer.from(value).toString('base64');
  return (i) => {
    const n = sequential ? i % keySpace : Math.floor(Math.random() * keySpace);
    return `{"key":"${benchKey(keySize, n).toString('base64')}","value":"${v}"}`;
  };
}

/** The JSON body of a range of [key, end) (end empty: one key), serializable or linearizable. */
export function rangeBody(key: string, end: string, serializable: boolean): (i: number) => string {
  const b = JSON.stringify({
    key: Buffer.from(key).toString('base64'),
    ...(end !== '' ? { range_end: Buffer.from(end).toString('base64') } : {}),
    ...(serializable ? { serializable: true } : {}),
  });
  return () => b;
}

/**
 * The key of the i-th v2 set: its number (sequential or random in the key space) in decimal, zero-padded to
 * `keySize` characters, since a v2 key is a URL path segment (etcd's binary benchmark keys are not).
 * Throws when keySpace−1 needs more than `keySize` digits.
 */
export function v2Keys(keySize: number, keySpace: number, sequential: boolean): (i: number) => string {
  if (String(keySpace - 1).length > keySize) throw new Error(`--key-space-size=${keySpace} needs keys longer than --key-size=${keySize}`);
  return (i) => String(sequential ? i % keySpace : Math.floor(Math.random() * keySpace)).padStart(keySize, '0');
}

/** The path of a v2 key: /v2/keys/ + the key, each segment URL-encoded. */
export function v2Path(key: string, query = ''): string {
  return `/v2/keys/${key.split('/').map(encodeURIComponent).join('/')}${query}`;
}

/** Runs the load and summarises it. Rejects when autocannon cannot start (bad URL). */
export function runHttpBench(o: HttpBenchOptions): Promise<Summary> {
  const url = o.endpoint.startsWith('http') ? o.endpoint : `http://${o.endpoint}`;
  const lat = new Float64Array(o.total);
  let n = 0;
  let sent = 0;
  const errors: Record<string, number> = {};
  const start = process.hrtime.bigint();
  // autocannon reports the end of an `amount` run at its next one-second tick: the run lasts until the last answer.
  let lastAt = start;
  return new Promise((resolve, reject) => {
    const inst = autocannon(
      {
        url,
        connections: o.conns,
        pipelining: 1,
        amount: o.total,
        timeout: 30,
        headers: o.body ? { 'content-type': o.contentType ?? 'application/json' } : {},
        requests: [
          {
            method: o.method ?? 'POST',
            path: typeof o.path === 'string' ? o.path : o.path(0),
            setupRequest: (req: autocannon.Request) => {
              const i = sent++;
              if (typeof o.path !== 'string') req.path = o.path(i);
              if (o.body) req.body = o.body(i);
              return req;
            },
          },
        ],
      },
      (err: Error | null) => {
        if (err) return reject(err);
        const totalSec = Number((lastAt > start ? lastAt : process.hrtime.bigint()) - start) / 1e9;
        resolve(summarize(sortedCopy(lat.subarray(0, n)), totalSec, errors));
      },
    );
    inst.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      lastAt = process.hrtime.bigint();
      if (statusCode >= 200 && statusCode < 300) {
        if (n < lat.length) lat[n++] = responseTime / 1000;
      } else {
        const k = `HTTP ${statusCode}`;
        errors[k] = (errors[k] ?? 0) + 1;
      }
    });
    inst.on('reqError', (e: Error) => {
      lastAt = process.hrtime.bigint();
      const k = e.message || String(e);
      errors[k] = (errors[k] ?? 0) + 1;
    });
  });
}
