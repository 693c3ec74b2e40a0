/**
 * gRPC plumbing and request bytes for the bench tool.
 *
 * Clients are built with `grpc.makeGenericClientConstructor` from method definitions that carry raw bytes both
 * ways: requests are encoded once with our protobufjs codecs (src/wire/codec.ts) and responses are only
 * decoded where the tool needs a field (Status, LeaseGrant, Watch). One bench "conn" = one grpc-js Client with
 * its own subchannel pool, i.e. its own TCP connection, as etcd's benchmark makes one grpc.ClientConn per conn.
 */
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import { pb } from '../wire/codec';

const ident = (b: Buffer): Buffer => b;

function unary(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return { path, requestStream: false, responseStream: false, requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident };
}
function bidi(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return { path, requestStream: true, responseStream: true, requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident };
}

/** Raw-bytes method table of the etcd v3 RPCs the bench tool calls. */
export const methods = {
  Range: unary('/etcdserverpb.KV/Range'),
  Put: unary('/etcdserverpb.KV/Put'),
  Txn: unary('/etcdserverpb.KV/Txn'),
  Status: unary('/etcdserverpb.Maintenance/Status'),
  MemberList: unary('/etcdserverpb.Cluster/MemberList'),
  LeaseGrant: unary('/etcdserverpb.Lease/LeaseGrant'),
  LeaseKeepAlive: bidi('/etcdserverpb.Lease/LeaseKeepAlive'),
  Watch: bidi('/etcdserverpb.Watch/Watch'),
} as const;

type UnaryFn = (req: Buffer, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => grpc.ClientUnaryCall;
type BidiFn = (meta?: grpc.Metadata, opts?: grpc.CallOptions) => grpc.ClientDuplexStream<Buffer, Buffer>;

/** A grpc-js client exposing the raw-bytes etcd methods of `methods`. */
export type EtcdRawClient = grpc.Client & {
  Range: UnaryFn; Put: UnaryFn; Txn: UnaryFn; Status: UnaryFn; MemberList: UnaryFn; LeaseGrant: UnaryFn;
  LeaseKeepAlive: BidiFn; Watch: BidiFn;
};

const RawClient = grpc.makeGenericClientConstructor(methods as unknown as grpc.ServiceDefinition, 'etcdbench');

/** TLS material (file paths) from --cacert/--cert/--key; all optional. */
export interface TlsFiles { cacert?: string; cert?: string; key?: string }

/** Strips an http:// or https:// scheme and a trailing slash: "https://h:p/" → "h:p". */
export function endpointTarget(ep: string): string {
  return ep.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
}

/** True when the endpoint or the TLS flags ask for TLS. */
export function wantsTls(ep: string, tls: TlsFiles): boolean {
  return /^https:\/\//i.test(ep.trim()) || !!(tls.cacert || tls.cert || tls.key);
}

/** Opens one connection (own subchannel pool) to `endpoint`. The channel connects lazily unless awaited with `waitReady`. */
export function newClient(endpoint: string, tls: TlsFiles = {}): EtcdRawClient {
  const creds = wantsTls(endpoint, tls)
    ? grpc.credentials.createSsl(
        tls.cacert ? fs.readFileSync(tls.cacert) : null,
        tls.key ? fs.readFileSync(tls.key) : null,
        tls.cert ? fs.readFileSync(tls.cert) : null,
      )
    : grpc.credentials.createInsecure();
  return new RawClient(endpointTarget(endpoint), creds, {
    'grpc.use_local_subchannel_pool': 1,
    // Cheaper calls: no retry buffering layer and no channelz bookkeeping (a load tool reports failures, it
    // does not retry them).
    'grpc.enable_retries': 0,
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  }) as unknown as EtcdRawClient;
}

/** Resolves once `client`'s channel is connected; rejects after `timeoutMs` ms. */
export function waitReady(client: grpc.Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
  });
}

/** Go-style text of a gRPC error, e.g. "rpc error: code = Unavailable desc = connection refused". */
export function errorText(err: unknown): string {
  const e = err as Partial<grpc.ServiceError> & { message?: string };
  if (typeof e?.code === 'number') {
    const name = grpc.status[e.code] ?? String(e.code);
    const pretty = name.split('_').map((w) => w[0] + w.slice(1).toLowerCase()).join('');
    return `rpc error: code = ${pretty === 'DeadlineExceeded' ? 'DeadlineExceeded' : pretty} desc = ${e.details ?? ''}`;
  }
  return String(e?.message ?? err);
}

/** Promise wrapper of a raw unary call; `timeoutMs` 0 = no deadline. */
export function callUnary(client: EtcdRawClient, method: 'Range' | 'Put' | 'Txn' | 'Status' | 'MemberList' | 'LeaseGrant', req: Buffer, timeoutMs = 0, meta: grpc.Metadata = new grpc.Metadata()): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: grpc.CallOptions = timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {};
    client[method](req, meta, opts, (err, res) => (err ? reject(err) : resolve(res as Buffer)));
  });
}

// ---------- keys and requests ----------

/** Bytes of the zig-zag varint of integer `n` (Go's binary.PutVarint encoding). */
export function zigzagVarint(n: number): number[] {
  let u = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (u >= 0x80) {
    out.push((u % 0x80) | 0x80);
    u = Math.floor(u / 0x80);
  }
  out.push(u);
  return out;
}

/**
 * Writes benchmark key number `n` into `buf` at `off`: `keySize` bytes, zero-filled, starting with the zig-zag
 * varint of n (the key scheme of etcd's benchmark put). Throws if the varint does not fit.
 */
export function writeKey(buf: Uint8Array, off: number, keySize: number, n: number): void {
  const v = zigzagVarint(n);
  if (v.length > keySize) throw new Error(`key number ${n} does not fit in --key-size=${keySize}`);
  buf.fill(0, off, off + keySize);
  for (let i = 0; i < v.length; i++) buf[off + i] = v[i];
}

/** The `keySize`-byte benchmark key for number `n` (see writeKey). */
export function benchKey(keySize: number, n: number): Buffer {
  const b = Buffer.alloc(keySize);
  writeKey(b, 0, keySize, n);
  return b;
}

/** Throws a readable error when key numbers 0..keySpace−1 do not fit in `keySize` bytes. */
export function checkKeySpace(keySize: number, keySpace: number): void {
  if (keySize < 1) throw new Error(`expected positive --key-size, got (${keySize})`);
  if (keySpace < 1) throw new Error(`expected positive --key-space-size, got (${keySpace})`);
  if (zigzagVarint(keySpace - 1).length > keySize) {
    throw new Error(`--key-space-size=${keySpace} needs keys longer than --key-size=${keySize}`);
  }
}

/**
 * Pre-encoded PutRequest bytes for keys of one size: `encode(n)` returns the request for key number n.
 * The request is encoded once with pb.PutRequest and the key bytes are rewritten in place in a copy, so a
 * request costs one small buffer copy. With `cacheUpTo` ≥ keySpace every request is built up front.
 */
export class PutEncoder {
  private readonly template: Buffer;
  private readonly keyOff: number;
  private readonly cache: Buffer[] | null;

  constructor(readonly keySize: number, value: Uint8Array, keySpace: number, cacheUpTo = 8192) {
    checkKeySpace(keySize, keySpace);
    this.template = Buffer.from(pb.PutRequest.encode({ key: Buffer.alloc(keySize, 0xff), value }).finish());
    // The key is field 1 (tag 0x0a) followed by its length as an unsigned varint.
    this.keyOff = 1 + uvarintLen(keySize);
    if (this.template[0] !== 0x0a || this.template[this.keyOff] !== 0xff) throw new Error('unexpected PutRequest layout');
    this.cache = keySpace <= cacheUpTo ? Array.from({ length: keySpace }, (_, n) => this.build(n)) : null;
  }

  private build(n: number): Buffer {
    const b = Buffer.allocUnsafe(this.template.length);
    this.template.copy(b);
    writeKey(b, this.keyOff, this.keySize, n);
    return b;
  }

  /** PutRequest bytes for key number n (shared buffer when cached: never mutate it). */
  encode(n: number): Buffer {
    return this.cache ? this.cache[n] : this.build(n);
  }
}

/** Length in bytes of the unsigned LEB128 varint of `n`. */
export function uvarintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** RangeRequest bytes for [key, end) (end empty = the single key), serializable or linearizable. */
export function encodeRange(key: string, end: string, serializable: boolean): Buffer {
  const r: Record<string, unknown> = { key: Buffer.from(key) };
  if (end) r.rangeEnd = Buffer.from(end);
  if (serializable) r.serializable = true;
  return Buffer.from(pb.RangeRequest.encode(r).finish());
}

/** TxnRequest bytes with no compares and `keyNums.length` puts in success, each of `value`. */
export function encodeTxnPut(keySize: number, keyNums: number[], value: Uint8Array): Buffer {
  return Buffer.from(
    pb.TxnRequest.encode({ success: keyNums.map((n) => ({ requestPut: { key: benchKey(keySize, n), value } })) }).finish(),
  );
}
