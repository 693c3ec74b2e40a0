/**
 * etcd api: etcdserverpb.Watch (bidi stream) over the raw codec: each request Buffer is decoded with
 * pb.WatchRequest by the stream (src/watch/stream.ts), and every response is already-encoded WatchResponse bytes
 * written unchanged. The write callback of grpc-js (the HTTP/2 stream took the frame) acknowledges the bytes the
 * stream holds, which is how a client that stops reading is detected (src/watch/hub.ts: slow watchers).
 *
 * A request that does not decode ends the stream with grpc-go's Internal "grpc: error unmarshalling request: …".
 * A client half-close ends the stream with OK (etcd's recvLoop returns nil on io.EOF).
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { WatchHub } from '../../watch/hub';
import { WatchStream } from '../../watch/stream';
import { WatchService } from './services';
import { unmarshalError } from './status';
import { Errors, EtcdError } from '../../errors';
import type { AuthInfo } from '../../auth/store';
import type { AuthGateway } from './gateway';
import { withIdentity } from './auth-gate';

/** grpc-go's status codes by number, for the text of a status error. */
const CODE_NAMES: Record<number, string> = { 3: 'InvalidArgument', 7: 'PermissionDenied', 16: 'Unauthenticated' };

/**
 * etcd recvLoop: the cancel reason of a watch refused by auth (invalid token, stale revision, no user, else
 * permission denied), written as the gRPC error's text (etcd puts rpctypes.ErrGRPC*.Error() there).
 */
function cancelReasonOf(e: unknown): string {
  const spec = e instanceof EtcdError && (e.id === Errors.InvalidAuthToken.id || e.id === Errors.AuthOldRevision.id || e.id === Errors.UserEmpty.id)
    ? Object.values(Errors).find((x) => x.id === e.id)!
    : Errors.PermissionDenied;
  return `rpc error: code = ${CODE_NAMES[spec.grpcCode]} desc = ${spec.message}`;
}

/**
 * Requests a Watch stream may send while its token is still being verified (the first request starts the check;
 * the rest wait for the identity). At the limit the stream fails with etcd's "too many requests" (ResourceExhausted).
 */
export const MAX_WATCH_REQUESTS_AWAITING_AUTH = 1024;

/** Options of {@link createWatchHandlers}. */
export interface WatchServiceOptions {
  hub: WatchHub;
  /** etcd --experimental-watch-progress-notify-interval, ms. */
  progressIntervalMs: number;
  /** Per-stream pending byte budget (default MAX_PENDING_BYTES_PER_STREAM). */
  maxPendingBytes?: number;
  /** etcd's auth: each created watch needs read permission on its range. */
  auth?: AuthGateway;
}

/** The Watch handler keyed by proto method name, for createGrpcServer's extraServices. */
export function createWatchHandlers(opts: WatchServiceOptions): UntypedServiceImplementation {
  return {
    Watch(call: ServerDuplexStream<Buffer, Uint8Array>): void {
      let ended = false;
      const auth = opts.auth;
      // The stream's identity (etcd reads it from the stream's context for every create): resolved once, requests
      // that arrive while a token is being verified wait in `queued`.
      let identity: { ai: AuthInfo | null } | { err: unknown } | null = auth === undefined ? { ai: null } : null;
      let queued: Buffer[] | null = null;
      const permit = auth === undefined ? undefined : (key: Uint8Array, rangeEnd: Uint8Array | null): string | null => {
        if (identity === null) return Errors.PermissionDenied.message;
        if ('err' in identity) return cancelReasonOf(identity.err);
        const e = auth.rangeError(identity.ai, { key, rangeEnd });
        return e === null ? null : cancelReasonOf(e);
      };
      const stream = new WatchStream(
        opts.hub,
        (buf, done) => {
          if (ended) { done(); return; }
          try {
            call.write(buf, () => done());
          } catch {
            done();
          }
        },
        { progressIntervalMs: opts.progressIntervalMs, maxPendingBytes: opts.maxPendingBytes, permit },
      );
      const finish = (): void => {
        if (ended) return;
        ended = true;
        stream.close();
      };
      const handle = (b: Buffer): void => {
        try {
          stream.handle(b);
        } catch (e) {
          finish();
          const s = unmarshalError(e);
          call.emit('error', { code: s.code, details: s.details });
        }
      };
      call.on('data', (b: Buffer) => {
        if (identity !== null) return handle(b);
        if (queued !== null) {
          if (queued.length >= MAX_WATCH_REQUESTS_AWAITING_AUTH) {
            queued = [];
            finish();
            call.emit('error', { code: Errors.RequestTooManyRequests.grpcCode, details: Errors.RequestTooManyRequests.message });
            return;
          }
          queued.push(b);
          return;
        }
        queued = [b];
        const resolved = (v: { ai: AuthInfo | null } | { err: unknown }): void => {
          identity = v;
          const q = queued ?? [];
          queued = null;
          for (const x of q) if (!ended) handle(x);
        };
        withIdentity(auth, call, (err) => resolved({ err }), (ai) => resolved({ ai }));
      });
      call.on('end', () => {
        finish();
        call.end();
      });
      call.on('cancelled', finish);
      call.on('error', finish);
      call.on('close', finish);
    },
  };
}

/** The service entry for createGrpcServer({ extraServices }). */
export function watchServiceEntry(opts: WatchServiceOptions): { definition: typeof WatchService; implementation: UntypedServiceImplementation } {
  return { definition: WatchService, implementation: createWatchHandlers(opts) };
}
