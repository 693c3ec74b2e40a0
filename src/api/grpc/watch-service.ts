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

export interface WatchServiceOptions {
  hub: WatchHub;
  /** etcd --experimental-watch-progress-notify-interval, ms. */
  progressIntervalMs: number;
  /** Per-stream pending byte budget (default MAX_PENDING_BYTES_PER_STREAM). */
  maxPendingBytes?: number;
}

/** The Watch handler keyed by proto method name, for createGrpcServer's extraServices. */
export function createWatchHandlers(opts: WatchServiceOptions): UntypedServiceImplementation {
  return {
    Watch(call: ServerDuplexStream<Buffer, Uint8Array>): void {
      let ended = false;
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
        { progressIntervalMs: opts.progressIntervalMs, maxPendingBytes: opts.maxPendingBytes },
      );
      const finish = (): void => {
        if (ended) return;
        ended = true;
        stream.close();
      };
      call.on('data', (b: Buffer) => {
        try {
          stream.handle(b);
        } catch (e) {
          finish();
          const s = unmarshalError(e);
          call.emit('error', { code: s.code, details: s.details });
        }
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
