/**
 * etcd api: etcdserverpb.Lease handlers over the raw codec (src/api/grpc/services.ts), etcd 3.4 semantics
 * (v3rpc/lease.go + etcdserver/v3_server.go):
 *  - LeaseGrant / LeaseRevoke are proposed through Raft; the answer is the apply worker's encoded response.
 *    A TTL below the minimum lease TTL is raised before proposing, so the response carries the raised TTL as etcd's.
 *  - LeaseKeepAlive (bidi stream) renews on the leader's lessor; each request is answered {header, ID, TTL}, in
 *    order, TTL 0 when the lease does not exist. LeaseTimeToLive reads the leader's lessor; a missing lease is a
 *    normal answer with TTL -1. On a follower both are forwarded over gRPC to the leader's advertised client URL
 *    (one lazily created client per leader URL, one multiplexed keep-alive stream); a forwarded call carries
 *    {@link FORWARDED_METADATA} and is never forwarded again. Without a leader they retry for the request timeout
 *    and then fail with etcd's errors (no leader / request timed out).
 *  - LeaseLeases lists the stored leases after a ReadIndex barrier (soonest expiry first on the leader).
 *  - Every answer is linearizable with Grant / Revoke proposed through any member (see src/lease/lessor.ts).
 */
import * as grpc from '@grpc/grpc-js';
import type { handleUnaryCall, sendUnaryData, ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { EntryKind } from '../../wire/entry';
import { EtcdError, etcdError } from '../../errors';
import { NotPrimaryError, type Lessor } from '../../lease/lessor';
import { MAX_LEASE_TTL_SECONDS } from '../../wire/lease';
import { pb, type ResponseHeader } from '../../wire/codec';
import { toStatus, unmarshalError, type GrpcLogger, type StatusLike } from './status';
import type { AuthInfo } from '../../auth/store';
import type { AuthGateway, MemberSurface } from './gateway';
import { withIdentity } from './auth-gate';
import { FORWARDED_METADATA, callLeader, clientTarget, forwardedMetadata, isForwarded } from './forward';

export { FORWARDED_METADATA };

/**
 * Keep-alive requests one stream may have waiting while an earlier one is renewed asynchronously (forwarded to the
 * leader, or waiting for the applied index). A client multiplexes all its leases on one stream (etcd clientv3), so
 * this is room for that many leases due at once. At the limit the stream fails with etcd's "too many requests"
 * (ResourceExhausted; the client's keep-alive loop opens a new stream), instead of buffering without end.
 */
export const MAX_QUEUED_KEEPALIVES_PER_STREAM = 16_384;

/**
 * What the Lease service needs of the server ('applied' events: the store revision can only change then).
 */
export type LeaseServerSurface = Pick<MemberSurface, 'propose' | 'leader' | 'identity' | 'leaderClientUrls' | 'events'> & {
  readonly reader: { currentRevision(): number };
};

/** Options of {@link createLeaseHandlers}. */
export interface LeaseServiceOptions {
  server: LeaseServerSurface;
  lessor: Lessor;
  /** etcd's minimum lease TTL (seconds); see lessor.ts minLeaseTtlSeconds. */
  minTtlSeconds: number;
  /** How long forwarded calls keep retrying before NoLeader / Timeout (etcd: ReqTimeout). */
  requestTimeoutMs: number;
  logger?: GrpcLogger;
  /** etcd's auth: grants and revokes are proposed as the caller (LeaseRevoke needs write on every attached key). */
  auth?: AuthGateway;
  /** Bound on a keep-alive stream's waiting requests (default MAX_QUEUED_KEEPALIVES_PER_STREAM). */
  maxQueuedKeepAlives?: number;
}

type Unary = handleUnaryCall<Buffer, Uint8Array>;
type Reply = sendUnaryData<Uint8Array>;
type Bidi = (call: ServerDuplexStream<Buffer, Uint8Array>) => void;

interface Decoded<T> { ok: true; v: T }
function decode<T>(type: { decode(b: Uint8Array): unknown }, raw: Buffer): Decoded<T> | { ok: false; err: StatusLike } {
  try {
    return { ok: true, v: type.decode(raw) as T };
  } catch (e) {
    return { ok: false, err: unmarshalError(e) };
  }
}

const identityBuf = (b: Buffer): Buffer => b;

/**
 * The follower's connection to the leader's client URL: a gRPC client created lazily and reused while the
 * leader's URL stays the same, and one keep-alive stream whose answers come back in request order.
 */
class LeaderLink {
  private url = '';
  private client: grpc.Client | null = null;
  private stream: grpc.ClientDuplexStream<Buffer, Buffer> | null = null;
  /**
   * Renewals waiting for the leader's answer, in request order. Bounded by the keep-alive streams open on this
   * member: each stream has at most one renewal in flight (its others wait in its own bounded queue).
   */
  private queue: Array<{ resolve: (ttl: number) => void; reject: (e: unknown) => void }> = [];

  private clientFor(url: string): grpc.Client {
    if (this.client === null || this.url !== url) {
      this.close();
      this.url = url;
      this.client = new grpc.Client(clientTarget(url), grpc.credentials.createInsecure());
    }
    return this.client;
  }

  /** Renews `id` on the leader at `url`; resolves its TTL (0 = not found). */
  renew(url: string, id: number): Promise<number> {
    const client = this.clientFor(url);
    if (this.stream === null) {
      const s = client.makeBidiStreamRequest<Buffer, Buffer>('/etcdserverpb.Lease/LeaseKeepAlive', identityBuf, identityBuf, forwardedMetadata());
      this.stream = s;
      s.on('data', (b: Buffer) => {
        const w = this.queue.shift();
        if (w === undefined) return;
        try {
          w.resolve((pb.LeaseKeepAliveResponse.decode(b) as unknown as { TTL: number }).TTL);
        } catch (e) {
          w.reject(e);
        }
      });
      const fail = (e: unknown): void => {
        if (this.stream !== s) return;
        this.stream = null;
        const q = this.queue;
        this.queue = [];
        for (const w of q) w.reject(e);
        s.cancel();
      };
      s.on('error', fail);
      s.on('end', () => fail({ code: grpc.status.UNAVAILABLE, details: 'leader closed the keep-alive stream' }));
    }
    const s = this.stream;
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ resolve, reject });
      s.write(Buffer.from(pb.LeaseKeepAliveRequest.encode({ ID: id }).finish()));
    });
  }

  /** Forwards a TimeToLive request; resolves the leader's encoded response. */
  timeToLive(url: string, raw: Buffer, deadlineMs: number): Promise<Buffer> {
    const client = this.clientFor(url);
    return new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest<Buffer, Buffer>('/etcdserverpb.Lease/LeaseTimeToLive', identityBuf, identityBuf, raw, forwardedMetadata(),
        { deadline: deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  close(): void {
    const s = this.stream;
    this.stream = null;
    const q = this.queue;
    this.queue = [];
    for (const w of q) w.reject({ code: grpc.status.UNAVAILABLE, details: 'leader link closed' });
    s?.cancel();
    this.client?.close();
    this.client = null;
  }
}

/** The Lease handlers plus a close() for the leader link. */
export interface LeaseHandlers {
  implementation: UntypedServiceImplementation & Record<'LeaseGrant' | 'LeaseRevoke' | 'LeaseTimeToLive' | 'LeaseLeases', Unary> & { LeaseKeepAlive: Bidi };
  /** Closes the forwarding client. */
  close(): void;
}

/** Builds the Lease service handlers (keyed by proto method name, for `extraServices` with LeaseService). */
export function createLeaseHandlers(opts: LeaseServiceOptions): LeaseHandlers {
  const { server, lessor, logger, auth } = opts;
  const maxQueued = opts.maxQueuedKeepAlives ?? MAX_QUEUED_KEEPALIVES_PER_STREAM;
  const link = new LeaderLink();

  // The store revision changes only when a batch is applied: read it once per batch (keep-alives are hot).
  let cachedRevision = -1;
  const invalidateRevision = (): void => {
    cachedRevision = -1;
  };
  server.events.on('applied', invalidateRevision);
  const currentRevision = (): number => {
    if (cachedRevision < 0) cachedRevision = server.reader.currentRevision();
    return cachedRevision;
  };
  const header = (revision?: number): ResponseHeader => ({ ...server.identity(), revision: revision ?? currentRevision() });

  /**
   * Runs `local` on the leader's lessor when this member leads, otherwise `remote` on the leader (the one
   * forwarding path, src/api/grpc/forward.ts; etcd LeaseRenew / LeaseTimeToLive forwarding loop).
   */
  const onLeader = <T>(forwarded: boolean, local: () => Promise<T>, remote: (url: string, deadline: number) => Promise<T>): Promise<T> =>
    callLeader<T>({
      timeoutMs: opts.requestTimeoutMs,
      forwarded,
      local: () => (lessor.isLeading() ? local() : null),
      notHere: (e) => e instanceof NotPrimaryError,
      leaderUrls: () => {
        const l = server.leader();
        return l.lead === 0 || l.isLeader ? [] : server.leaderClientUrls().slice(0, 1);
      },
      remote,
    });

  // ---------------------------------------------------------------- unary

  const LeaseGrant: Unary = (call, cb) => {
    const d = decode<{ TTL: number; ID: number }>(pb.LeaseGrantRequest, call.request);
    if (!d.ok) return cb(d.err);
    const req = d.v;
    if (req.TTL > MAX_LEASE_TTL_SECONDS) return cb(etcdError('LeaseTTLTooLarge'));
    let raw: Uint8Array = call.request;
    if (req.TTL < opts.minTtlSeconds) raw = pb.LeaseGrantRequest.encode({ ID: req.ID, TTL: opts.minTtlSeconds }).finish();
    withIdentity(auth, call, (err) => cb(toStatus(err, logger)), (ai) => server.propose(EntryKind.LeaseGrant, raw, undefined, ai).then(
      (res) => {
        try {
          const r = pb.LeaseGrantResponse.decode(res) as unknown as { ID: number; TTL: number };
          lessor.granted(r.ID, r.TTL);
        } catch (err) {
          logger?.warn({ err }, 'lease: undecodable LeaseGrant response');
        }
        cb(null, res);
      },
      (err: unknown) => cb(toStatus(err, logger)),
    ));
  };

  const LeaseRevoke: Unary = (call, cb) => {
    const d = decode<{ ID: number }>(pb.LeaseRevokeRequest, call.request);
    if (!d.ok) return cb(d.err);
    const id = d.v.ID;
    // etcd checks the attached keys' write permission at apply time only (authApplierV3.LeaseRevoke).
    withIdentity(auth, call, (err) => cb(toStatus(err, logger)), (ai) => server.propose(EntryKind.LeaseRevoke, call.request, undefined, ai).then(
      (res) => {
        lessor.revoked(id);
        cb(null, res);
      },
      (err: unknown) => cb(toStatus(err, logger)),
    ));
  };

  const LeaseTimeToLive: Unary = (call, cb) => {
    const d = decode<{ ID: number; keys: boolean }>(pb.LeaseTimeToLiveRequest, call.request);
    if (!d.ok) return cb(d.err);
    const { ID, keys } = d.v;
    const forwarded = isForwarded(call.metadata);
    // etcd fills the header before answering; a lease the leader does not know is TTL -1 (not an error).
    onLeader<Uint8Array>(
      forwarded,
      async () => {
        try {
          const t = await lessor.timeToLive(ID, keys);
          return pb.LeaseTimeToLiveResponse.encode({ header: header(), ID, TTL: t.ttl, grantedTTL: t.grantedTtl, keys: t.keys }).finish();
        } catch (e) {
          if (e instanceof EtcdError && e.id === etcdError('LeaseNotFound').id) {
            return pb.LeaseTimeToLiveResponse.encode({ header: header(), ID, TTL: -1 }).finish();
          }
          throw e;
        }
      },
      async (url, deadline) => {
        const res = await link.timeToLive(url, call.request, deadline);
        // The leader's revision stays; identity fields are this member's (etcd header.fill).
        const r = pb.LeaseTimeToLiveResponse.decode(res) as unknown as { header?: ResponseHeader; ID: number; TTL: number; grantedTTL: number; keys: Uint8Array[] };
        return pb.LeaseTimeToLiveResponse.encode({ ...r, header: header(r.header?.revision || undefined) }).finish();
      },
    ).then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(err, logger)),
    );
  };

  const LeaseLeases: Unary = (call, cb) => {
    const d = decode<object>(pb.LeaseLeasesRequest, call.request);
    if (!d.ok) return cb(d.err);
    // Linearizable: a barrier first, so grants and revokes acknowledged anywhere before the call are listed / gone.
    lessor.linearizableLeaseIds().then(
      (ids) => cb(null, pb.LeaseLeasesResponse.encode({ header: header(), leases: ids.map((ID) => ({ ID })) }).finish()),
      (err: unknown) => cb(toStatus(err, logger)),
    );
  };

  // ---------------------------------------------------------------- keep-alive stream

  const LeaseKeepAlive: Bidi = (call) => {
    const forwarded = isForwarded(call.metadata);
    const pending: Buffer[] = [];
    let busy = false;
    let closed = false;
    let inputEnded = false;

    const finish = (): void => {
      if (closed) return;
      closed = true;
      call.end();
    };
    const fail = (err: StatusLike | grpc.ServiceError): void => {
      if (closed) return;
      closed = true;
      call.emit('error', err);
    };

    const answer = (id: number, revision: number, ttl: number): void => {
      if (closed) return;
      call.write(pb.LeaseKeepAliveResponse.encode({ header: header(revision), ID: id, TTL: ttl }).finish());
    };

    /** Handles queued requests in order; synchronous while the leader knows the lease, async otherwise. */
    const drain = (): void => {
      while (!busy && !closed && pending.length > 0) {
        const raw = pending.shift()!;
        const d = decode<{ ID: number }>(pb.LeaseKeepAliveRequest, raw);
        if (!d.ok) return fail(d.err);
        const id = d.v.ID;
        // The header is taken before renewing (etcd: a keep-alive never shows a revision after a revoke of it).
        const revision = currentRevision();
        const fast = lessor.tryRenewSync(id);
        if (fast !== undefined) {
          answer(id, revision, fast);
          continue;
        }
        busy = true;
        onLeader<number>(
          forwarded,
          () => lessor.renew(id),
          (url) => link.renew(url, id),
        ).then(
          (ttl) => answer(id, revision, ttl),
          (err: unknown) => {
            if (err instanceof EtcdError && err.id === etcdError('LeaseNotFound').id) answer(id, revision, 0);
            else fail(toStatus(err, logger));
          },
        ).finally(() => {
          busy = false;
          drain();
        });
      }
      if (!busy && inputEnded && pending.length === 0) finish();
    };

    call.on('data', (raw: Buffer) => {
      if (closed) return;
      if (pending.length >= maxQueued) {
        pending.length = 0;
        return fail(toStatus(etcdError('RequestTooManyRequests'), logger));
      }
      pending.push(raw);
      drain();
    });
    call.on('end', () => {
      inputEnded = true;
      drain();
    });
    call.on('cancelled', () => {
      closed = true;
      pending.length = 0;
    });
    call.on('error', () => {
      closed = true;
    });
  };

  return {
    implementation: { LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases },
    close: () => {
      server.events.off('applied', invalidateRevision);
      link.close();
    },
  };
}
