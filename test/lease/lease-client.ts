/**
 * A raw Lease client for the lease tests: every etcdserverpb.Lease method with our protobuf codecs, responses
 * as plain objects (numbers for int64), errors as grpc-js ServiceErrors.
 */
import * as grpc from '@grpc/grpc-js';
import { root } from '../../src/wire/codec';
import { grpcTarget } from '../helpers/grpc';

const TO_OBJECT = { defaults: true, arrays: true, longs: Number, enums: Number };
const T = (n: string) => root.lookupType(`etcdserverpb.${n}`);

/** Unary + keep-alive access to one endpoint's Lease service. */
export class LeaseClient {
  readonly client: grpc.Client;
  /** Sent as metadata `token` with every call when set (etcd's auth token). */
  token: string | undefined;
  constructor(endpoint: string) {
    this.client = new grpc.Client(grpcTarget(endpoint), grpc.credentials.createInsecure());
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token !== undefined) md.set('token', this.token);
    return md;
  }

  private unary<R = any>(method: string, reqType: string, resType: string, req: object, timeoutMs = 30_000): Promise<R> {
    const rq = T(reqType);
    const rs = T(resType);
    return new Promise<R>((resolve, reject) =>
      this.client.makeUnaryRequest(`/etcdserverpb.Lease/${method}`, (r: object) => Buffer.from(rq.encode(rq.fromObject(r)).finish()),
        (b: Buffer) => rs.toObject(rs.decode(b), TO_OBJECT) as R, req, this.metadata(), { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res as R))));
  }

  grant(TTL: number, ID = 0) { return this.unary('LeaseGrant', 'LeaseGrantRequest', 'LeaseGrantResponse', { TTL, ID }); }
  revoke(ID: number) { return this.unary('LeaseRevoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse', { ID }); }
  timeToLive(ID: number, keys = false, timeoutMs?: number) { return this.unary('LeaseTimeToLive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse', { ID, keys }, timeoutMs); }
  leases() { return this.unary('LeaseLeases', 'LeaseLeasesRequest', 'LeaseLeasesResponse', {}); }

  /** Sends one keep-alive per id on one stream and resolves the answers in order. */
  keepAlive(ids: number[], timeoutMs = 30_000): Promise<{ ID: number; TTL: number; header: any }[]> {
    const rq = T('LeaseKeepAliveRequest');
    const rs = T('LeaseKeepAliveResponse');
    return new Promise((resolve, reject) => {
      const out: any[] = [];
      const s = this.client.makeBidiStreamRequest(`/etcdserverpb.Lease/LeaseKeepAlive`, (r: object) => Buffer.from(rq.encode(rq.fromObject(r)).finish()),
        (b: Buffer) => rs.toObject(rs.decode(b), TO_OBJECT), this.metadata(), { deadline: Date.now() + timeoutMs });
      s.on('data', (r) => {
        out.push(r);
        if (out.length === ids.length) { s.end(); resolve(out); }
      });
      s.on('error', (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED && out.length < ids.length) reject(e); });
      for (const ID of ids) s.write({ ID });
    });
  }

  /** Runs a call; `{ok}` or `{err: {code, details}}`. */
  async settle<R>(p: Promise<R>): Promise<{ ok?: R; err?: { code: number; details: string } }> {
    try { return { ok: await p }; } catch (e) { const se = e as grpc.ServiceError; return { err: { code: se.code, details: se.details } }; }
  }

  close(): void { this.client.close(); }
}
