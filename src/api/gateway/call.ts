/**
 * The call object the JSON gateway hands to the gRPC service handlers (src/api/grpc/*-service.ts), standing for
 * grpc-js's ServerUnaryCall / ServerWritableStream / ServerDuplexStream: the handlers read `request`,
 * `metadata`, `cancelled`, `getDeadline()`, listen for 'data' / 'end' / 'cancelled', and answer through
 * `write`, `end` and `emit('error', status)`. Those answers go to a {@link CallSink} (the HTTP response) instead
 * of an HTTP/2 stream, so the gateway calls the same handlers as gRPC clients reach, without a loopback hop.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';

/** Where a call's answers go. */
export interface CallSink {
  /** One response message (encoded protobuf); `done` once the bytes are handed to the socket (flow control). */
  message(bytes: Uint8Array, done?: (err?: Error | null) => void): boolean;
  /** The handler ended the stream with OK. */
  end(): void;
  /** The handler failed the call with a gRPC status `{ code, details }`. */
  error(status: { code?: number; details?: string; message?: string }): void;
}

/**
 * Who a gateway request calls as: its metadata (the `authorization` token) and the client-certificate CN its call
 * carries (null: none). etcd's gateway is a gRPC client of its own member, so the certificate is the member's own
 * client-port one, never the HTTP client's (src/api/gateway/v3-gateway.ts says when it counts).
 */
export interface GatewayCaller {
  metadata: grpc.Metadata;
  certCommonName: string | null;
}

type AuthContext = { sslPeerCertificate?: { subject: { CN: string } } };

function authContext(cn: string | null): AuthContext {
  return cn === null ? {} : { sslPeerCertificate: { subject: { CN: cn } } };
}

/** What the auth gate reads of a call (auth-gate CallLike), for a caller whose request skips the gRPC handlers. */
export function callLike(caller: GatewayCaller): { metadata: grpc.Metadata; getAuthContext(): AuthContext } {
  return { metadata: caller.metadata, getAuthContext: () => authContext(caller.certCommonName) };
}

/** A gRPC call as the service handlers see it, fed by the gateway. */
export class GatewayCall extends EventEmitter {
  cancelled = false;
  private readonly certCn: string | null;
  /** The request bytes (unary and server-streaming calls). */
  readonly request: Buffer;
  readonly metadata: grpc.Metadata;

  /** `caller`: the metadata and the certificate CN the auth gate reads from the call. */
  constructor(private readonly sink: CallSink, caller: GatewayCaller, request?: Uint8Array) {
    super();
    this.metadata = caller.metadata;
    this.certCn = caller.certCommonName;
    this.request = request === undefined ? Buffer.alloc(0) : Buffer.isBuffer(request) ? request : Buffer.from(request.buffer, request.byteOffset, request.byteLength);
  }

  /** No deadline: etcd's gateway calls its server without one. */
  getDeadline(): number {
    return Infinity;
  }

  getPeer(): string {
    return 'json-gateway';
  }

  /** grpc-js's TLS auth context, carrying the certificate CN the call is made with (none: no certificate). */
  getAuthContext(): AuthContext {
    return authContext(this.certCn);
  }

  sendMetadata(): void {}

  /**
   * grpc-js's ServerWritableStream.write: false when the answer's buffer is full, and then 'drain' once it was
   * flushed (handlers such as Maintenance.Snapshot wait for it before producing the next message).
   */
  write(bytes: Uint8Array, cbOrEncoding?: unknown, cb?: (err?: Error | null) => void): boolean {
    const done = typeof cbOrEncoding === 'function' ? (cbOrEncoding as (err?: Error | null) => void) : cb;
    let settledSync = true;
    let settled = false;
    const ok = this.sink.message(bytes, (err) => {
      settled = true;
      done?.(err);
      if (!settledSync) super.emit('drain');
    });
    settledSync = false;
    // Refused at once (answer ended or aborted, or a message that did not encode): a handler waiting for 'drain'
    // is let go, and sees the call cancelled or ended.
    if (!ok && settled) process.nextTick(() => super.emit('drain'));
    return ok;
  }

  end(): void {
    this.sink.end();
    super.emit('finish');
  }

  /** `emit('error', status)` is how handlers fail a stream: the status goes to the sink, listeners still run. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') {
      this.sink.error((args[0] ?? {}) as { code?: number; details?: string });
      if (this.listenerCount('error') === 0) return true;
    }
    return super.emit(event, ...args);
  }

  /** The HTTP client went away: what grpc-js reports as a cancelled call. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    super.emit('cancelled');
    super.emit('close');
  }
}
