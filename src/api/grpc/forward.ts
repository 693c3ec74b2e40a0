/**
 * The one leader-forwarding path: calls only the leader can answer (Lease KeepAlive / TimeToLive, served by the
 * leader's lessor; Cluster.MemberPromote, decided by the leader, which alone knows whether the learner caught up)
 * run here when this member leads and are otherwise sent, as raw protobuf bytes, to the leader's client URL
 * ({@link callLeader}). The remote's gRPC status passes through unchanged. A forwarded call carries
 * {@link FORWARDED_METADATA} and is never forwarded again: the receiver answers "not leader" instead, which the
 * sender retries. Source: etcd api: Lease.LeaseKeepAlive / LeaseTimeToLive (etcd 3.4 v3_server.go forwarding
 * loops), Cluster.MemberPromote.
 */
import * as grpc from '@grpc/grpc-js';
import { EtcdError, Errors, etcdError } from '../../errors';

/** Metadata key marking a call forwarded by a follower to the leader. */
export const FORWARDED_METADATA = 'etcetera-lease-forwarded';
/** Pause between forwarding attempts while there is no (reachable) leader (ms). */
export const FORWARD_RETRY_MS = 50;

const identity = (b: Buffer): Buffer => b;

/** Metadata marking a forwarded call. */
export function forwardedMetadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(FORWARDED_METADATA, '1');
  return md;
}

/** True when the incoming call was forwarded by another member (it must not be forwarded again). */
export function isForwarded(md: grpc.Metadata): boolean {
  return md.get(FORWARDED_METADATA).length > 0;
}

/** gRPC client host:port of a client URL (`http://host:port/`). */
export function clientTarget(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '');
}

/**
 * A forwarded call's failure worth another attempt: the transport failed (no code; Unavailable, DeadlineExceeded,
 * Cancelled, Internal, Unknown) or the remote is no longer the leader (etcd's "not leader"). Anything else is the
 * leader's own verdict and final.
 */
export function retriableForward(err: unknown): boolean {
  if (err instanceof EtcdError) return false;
  const e = err as { code?: unknown; details?: unknown };
  if (typeof e.code !== 'number') return true;
  if (e.code === grpc.status.FAILED_PRECONDITION) return e.details === Errors.NotLeader.message;
  return e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED || e.code === grpc.status.CANCELLED ||
    e.code === grpc.status.INTERNAL || e.code === grpc.status.UNKNOWN;
}

/** One call {@link callLeader} runs here or on the leader. */
export interface LeaderCall<T> {
  /** How long to keep trying (ms; etcd: the request timeout). */
  timeoutMs: number;
  /** The incoming call was itself forwarded: it is never forwarded again (answers "not leader"). */
  forwarded: boolean;
  /**
   * Serves the call on this member; null when this member is not the one to serve it. A rejection that
   * {@link notHere} accepts also sends the call to the leader.
   */
  local(): Promise<T> | null;
  /** This member turned out not to be the leader while serving (default: etcd's NotLeader). */
  notHere?(err: unknown): boolean;
  /** The leader's client URLs, [] while no other member is known to lead. */
  leaderUrls(): string[];
  /** Sends the call to `url`, to finish by `deadlineMs` (epoch ms); marks it forwarded. */
  remote(url: string, deadlineMs: number): Promise<T>;
  /** Pause between attempts (ms; default FORWARD_RETRY_MS). */
  retryMs?: number;
}

const isNotLeader = (e: unknown): boolean => e instanceof EtcdError && e.id === Errors.NotLeader.id;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `c` here when this member can serve it, otherwise on the leader, retrying {@link retriableForward}
 * failures and leaderless moments until `c.timeoutMs` passes. Rejects with the local or remote error, EtcdError
 * NotLeader for a forwarded call this member cannot serve, or, at the deadline, Timeout (a leader was seen) or
 * NoLeader (none was).
 */
export async function callLeader<T>(c: LeaderCall<T>): Promise<T> {
  const deadline = Date.now() + c.timeoutMs;
  const notHere = c.notHere ?? isNotLeader;
  const retryMs = c.retryMs ?? FORWARD_RETRY_MS;
  let sawLeader = false;
  for (;;) {
    const here = c.local();
    if (here !== null) {
      try {
        return await here;
      } catch (e) {
        if (!notHere(e)) throw e;
      }
    }
    if (c.forwarded) throw etcdError('NotLeader');
    for (const url of c.leaderUrls()) {
      sawLeader = true;
      try {
        return await c.remote(url, deadline);
      } catch (e) {
        if (!retriableForward(e)) throw e;
      }
    }
    if (Date.now() + retryMs >= deadline) throw etcdError(sawLeader ? 'Timeout' : 'NoLeader');
    await sleep(retryMs);
  }
}

/**
 * Calls `path` (e.g. `/etcdserverpb.Cluster/MemberPromote`) on `url` (`http://host:port`) with `request` bytes;
 * resolves with the response bytes, rejects with the remote's ServiceError (code + details) or a deadline error
 * after `timeoutMs` (ms). `metadata`: e.g. {@link forwardedMetadata}.
 */
export function forwardUnary(url: string, path: string, request: Uint8Array, timeoutMs: number, metadata = new grpc.Metadata()): Promise<Buffer> {
  const client = new grpc.Client(clientTarget(url), grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(path, identity, identity, Buffer.from(request), metadata, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res as Buffer);
    });
  });
}
