/**
 * Turning failures into the gRPC statuses a client sees. Coded errors come from src/errors.ts (their
 * `code`/`details` are the wire status); these helpers cover the statuses gRPC itself produces.
 */
import { status as GrpcStatus, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { EtcdError } from '../../errors';

/** A status grpc-js can send: `{ code, details }` (grpc-js reads exactly these fields of a callback error). */
export interface StatusLike { code: number; details: string }

/** Minimal logger the gRPC layer writes to (pino-compatible subset). */
export interface GrpcLogger {
  warn(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
}

/**
 * The status for a request whose protobuf bytes do not decode: code Internal with grpc-go's
 * "grpc: error unmarshalling request: <reason>" (grpc-go: server.go processUnaryRPC). The reason text is
 * protobufjs's, not gogoproto's.
 */
export function unmarshalError(err: unknown): StatusLike {
  const reason = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.INTERNAL, details: `grpc: error unmarshalling request: ${reason}` };
}

/** grpc-go's text for a method a service does not implement: code Unimplemented, "method X not implemented". */
export function unimplemented(method: string): StatusLike {
  return { code: GrpcStatus.UNIMPLEMENTED, details: `method ${method} not implemented` };
}

/**
 * Any rejection from a gateway → a status: an EtcdError (or anything already carrying a numeric `code` and
 * string `details`) passes unchanged; anything else is a bug, logged, and sent as Unknown with its message
 * (what grpc-go does with a non-status error).
 */
export function toStatus(err: unknown, logger?: GrpcLogger): StatusLike | ServiceError {
  if (err instanceof EtcdError) return err;
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; details?: unknown };
    if (typeof e.code === 'number' && typeof e.details === 'string') return { code: e.code, details: e.details };
  }
  logger?.warn({ err }, 'grpc handler failed with an uncoded error');
  return { code: GrpcStatus.UNKNOWN, details: err instanceof Error ? err.message : String(err) };
}

/**
 * Decodes a request's bytes with a protobufjs type; on failure answers `cb` with {@link unmarshalError} and
 * returns null (the caller just returns).
 */
export function decodeOrReply<T>(type: { decode(b: Uint8Array): unknown }, raw: Buffer, cb: sendUnaryData<Uint8Array>): T | null {
  try {
    return type.decode(raw) as T;
  } catch (err) {
    cb(unmarshalError(err));
    return null;
  }
}
