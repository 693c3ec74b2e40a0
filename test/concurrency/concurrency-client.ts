/**
 * A raw gRPC client for etcd's v3lockpb.Lock and v3electionpb.Election services (tests and native-bench), built
 * on grpc-js and our protobuf codecs. Responses are plain objects (defaults on, bytes as Buffers, numbers);
 * failures reject with grpc-js ServiceErrors (`code`, `details`).
 */
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { before, after } from 'node:test';
import { root } from '../../src/wire/codec';
import { startSut, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';

const TO_OBJECT: protobuf.IConversionOptions = { defaults: true, arrays: true, longs: Number, enums: Number };

/** "http://127.0.0.1:2379" → "127.0.0.1:2379". */
function target(endpoint: string): string {
  return endpoint.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '');
}

const METHODS: Record<string, [string, string]> = {
  'v3lockpb.Lock/Lock': ['v3lockpb.LockRequest', 'v3lockpb.LockResponse'],
  'v3lockpb.Lock/Unlock': ['v3lockpb.UnlockRequest', 'v3lockpb.UnlockResponse'],
  'v3electionpb.Election/Campaign': ['v3electionpb.CampaignRequest', 'v3electionpb.CampaignResponse'],
  'v3electionpb.Election/Proclaim': ['v3electionpb.ProclaimRequest', 'v3electionpb.ProclaimResponse'],
  'v3electionpb.Election/Leader': ['v3electionpb.LeaderRequest', 'v3electionpb.LeaderResponse'],
  'v3electionpb.Election/Observe': ['v3electionpb.LeaderRequest', 'v3electionpb.LeaderResponse'],
  'v3electionpb.Election/Resign': ['v3electionpb.ResignRequest', 'v3electionpb.ResignResponse'],
  'etcdserverpb.Lease/LeaseGrant': ['etcdserverpb.LeaseGrantRequest', 'etcdserverpb.LeaseGrantResponse'],
  'etcdserverpb.Lease/LeaseRevoke': ['etcdserverpb.LeaseRevokeRequest', 'etcdserverpb.LeaseRevokeResponse'],
  'etcdserverpb.KV/Range': ['etcdserverpb.RangeRequest', 'etcdserverpb.RangeResponse'],
  'etcdserverpb.KV/Put': ['etcdserverpb.PutRequest', 'etcdserverpb.PutResponse'],
};

function codecs(method: string): { enc: (r: object) => Buffer; dec: (b: Buffer) => any } {
  const m = METHODS[method];
  if (!m) throw new Error(`unknown method ${method}`);
  const reqT = root.lookupType(m[0]);
  const resT = root.lookupType(m[1]);
  return {
    enc: (r: object) => Buffer.from(reqT.encode(reqT.fromObject(r)).finish()),
    dec: (b: Buffer) => resT.toObject(resT.decode(b), TO_OBJECT),
  };
}

/** A gRPC failure: status code and message. */
export interface RpcError { code: number; details: string }

/** One connection to an endpoint. */
export class ConcurrencyClient {
  readonly client: grpc.Client;

  constructor(endpoint: string) {
    this.client = new grpc.Client(target(endpoint), grpc.credentials.createInsecure());
  }

  /** Unary call of `service/method`; `signal` cancels it. */
  call<T = any>(method: string, request: object, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const { enc, dec } = codecs(method);
    return new Promise<T>((resolve, reject) => {
      const c = this.client.makeUnaryRequest(`/${method}`, enc, dec, request, new grpc.Metadata(),
        { deadline: Date.now() + (opts.timeoutMs ?? 60_000) }, (err, res) => (err ? reject(err) : resolve(res as T)));
      opts.signal?.addEventListener('abort', () => c.cancel(), { once: true });
    });
  }

  /** Like call, but resolves `{ok}` or `{err: {code, details}}`. */
  async settle(method: string, request: object): Promise<{ ok?: any; err?: RpcError }> {
    try {
      return { ok: await this.call(method, request) };
    } catch (e) {
      const se = e as grpc.ServiceError;
      if (typeof se.code !== 'number') throw e;
      return { err: { code: se.code, details: se.details } };
    }
  }

  /** LeaseGrant; pass a small `id` when talking to etcd (its random IDs exceed 2^53 and do not survive as numbers). */
  grant(ttl: number, id = 0): Promise<number> {
    return this.call<{ ID: number }>('etcdserverpb.Lease/LeaseGrant', { TTL: ttl, ID: id }).then((r) => r.ID);
  }
  revoke(id: number): Promise<unknown> { return this.call('etcdserverpb.Lease/LeaseRevoke', { ID: id }); }
  lock(name: string | Buffer, lease: number, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<any> {
    return this.call('v3lockpb.Lock/Lock', { name: Buffer.from(name), lease }, opts);
  }
  unlock(key: Buffer | string): Promise<any> { return this.call('v3lockpb.Lock/Unlock', { key: Buffer.from(key) }); }
  campaign(name: string, lease: number, value: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<any> {
    return this.call('v3electionpb.Election/Campaign', { name: Buffer.from(name), lease, value: Buffer.from(value) }, opts);
  }
  leader(name: string): Promise<any> { return this.call('v3electionpb.Election/Leader', { name: Buffer.from(name) }); }
  proclaim(leader: object, value: string): Promise<any> {
    return this.call('v3electionpb.Election/Proclaim', { leader, value: Buffer.from(value) });
  }
  resign(leader: object): Promise<any> { return this.call('v3electionpb.Election/Resign', { leader }); }
  range(key: string, prefix = false): Promise<any> {
    const k = Buffer.from(key);
    const end = Buffer.from(k);
    end[end.length - 1]!++;
    return this.call('etcdserverpb.KV/Range', prefix ? { key: k, rangeEnd: end } : { key: k });
  }

  /** Observe(name): calls `onLeader` for each LeaderResponse; returns a cancel function and the end promise. */
  observe(name: string, onLeader: (r: any) => void): { cancel: () => void; ended: Promise<RpcError | null> } {
    const { enc, dec } = codecs('v3electionpb.Election/Observe');
    const s = this.client.makeServerStreamRequest('/v3electionpb.Election/Observe', enc, dec, { name: Buffer.from(name) }, new grpc.Metadata());
    s.on('data', onLeader);
    const ended = new Promise<RpcError | null>((resolve) => {
      s.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
      s.on('end', () => resolve(null));
    });
    return { cancel: () => s.cancel(), ended };
  }

  close(): void { this.client.close(); }
}

/**
 * Registers the file's before/after hooks: one SUT (test/helpers/servers.ts startSut) and one ConcurrencyClient on
 * it, handed to `onStart`; after the file, the client closes, the SUT stops and every child is killed. Nothing
 * starts when `skip` is set (the tests are skipped with that reason).
 */
export function serveForFile(skip: string | undefined, onStart: (sut: ServerHandle, client: ConcurrencyClient) => void): void {
  let sut: ServerHandle | undefined;
  let client: ConcurrencyClient | undefined;
  before(async () => {
    if (skip) return;
    sut = await startSut();
    client = new ConcurrencyClient(sut.clientUrl);
    onStart(sut, client);
  });
  after(async () => {
    client?.close();
    await sut?.stop();
    await killAllChildren();
  });
}
