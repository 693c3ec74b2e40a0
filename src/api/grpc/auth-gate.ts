/**
 * Who a gRPC call acts as, and the admin-only guard (etcd: AuthInfoFromCtx / AuthInfoFromTLS, v3rpc
 * authMaintenanceServer, checkMembershipOperationPermission). The token travels in metadata `token` (etcd also
 * reads `authorization`, the gRPC-gateway's name); with --client-cert-auth a call without a token acts as the CN of
 * its verified client certificate.
 */
import type { handleServerStreamingCall, handleUnaryCall, Metadata, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { EtcdError, Errors, type ErrorSpec } from '../../errors';
import type { AuthInfo } from '../../auth/store';
import type { AuthGateway } from './gateway';
import { toStatus, type GrpcLogger } from './status';
import { anyClientCertRecorded, clientCertCommonName } from '../client-certs';

/** The call surface identity needs (unary calls and streams alike). */
export interface CallLike {
  metadata: Metadata;
  getAuthContext?(): { sslPeerCertificate?: { subject?: { CN?: string | string[] } } } | null;
  getPeer?(): string;
}

/** etcd rpctypes.TokenFieldNameGRPC / TokenFieldNameSwagger. */
const TOKEN_KEYS = ['token', 'authorization'] as const;

/** The token in a call's metadata, or undefined. */
export function tokenOf(md: Metadata): string | undefined {
  for (const k of TOKEN_KEYS) {
    const v = md.get(k);
    if (v.length > 0) return typeof v[0] === 'string' ? v[0] : Buffer.from(v[0] as Buffer).toString('utf8');
  }
  return undefined;
}

/**
 * True when `withIdentity` would hand the call on as no user (null) without a lookup: no auth gateway, or auth
 * disabled and the call carries neither a token nor a client certificate CN. Lets a hot path skip the identity
 * step. A call that can read one request header directly (h2grpc's `headerValue`) is not made to build its Metadata.
 */
export function actsAsNoUser(auth: AuthGateway | undefined, call: CallLike & { headerValue?(key: string): string | undefined }): boolean {
  if (auth === undefined) return true;
  if (auth.enabled) return false;
  if (typeof call.headerValue === 'function') {
    for (const k of TOKEN_KEYS) if (call.headerValue(k) !== undefined) return false;
  } else if (tokenOf(call.metadata) !== undefined) return false;
  return certCommonName(call) === null;
}

/**
 * The CN of the call's client certificate (etcd AuthInfoFromTLS: the first verified chain's leaf), '' for a
 * certificate without CN, or null when the connection is not TLS or the client sent none. The listener only accepts
 * certificates its CA verified when --client-cert-auth is on, which is the only case the auth host uses the CN.
 */
export function certCommonName(call: CallLike): string | null {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  const cn = cert?.subject?.CN;
  if (Array.isArray(cn)) return cn[0] ?? '';
  if (typeof cn === 'string') return cn;
  if (cert?.subject !== undefined) return '';
  // TLS connections reach grpc-js through a Duplex: the listener kept the CN by peer address (client-certs.ts).
  if (!anyClientCertRecorded()) return null;
  const peer = call.getPeer?.();
  return peer === undefined ? null : clientCertCommonName(peer);
}

/**
 * Resolves the call's identity and runs `fn` with it (synchronously when the token is known), or answers `fail`
 * with InvalidAuthToken. Without an auth gateway every call has no identity (null).
 */
export function withIdentity(auth: AuthGateway | undefined, call: CallLike, fail: (e: unknown) => void, fn: (ai: AuthInfo | null) => void): void {
  if (auth === undefined) return fn(null);
  let r: AuthInfo | null | Promise<AuthInfo | null>;
  try {
    // The certificate counts only without a token: not looked up otherwise (it costs a socket lookup per call).
    const token = tokenOf(call.metadata);
    r = auth.identify(token, token === undefined ? certCommonName(call) : null);
  } catch (e) {
    return fail(e);
  }
  if (r instanceof Promise) r.then(fn, fail);
  else fn(r);
}

/** etcd's rpctypes errors → the auth package's raw errors that authMaintenanceServer lets through. */
const RAW: Array<[ErrorSpec, ErrorSpec]> = [
  [Errors.PermissionDenied, Errors.MaintenancePermissionDenied],
  [Errors.UserEmpty, Errors.MaintenanceUserEmpty],
  [Errors.UserNotFound, Errors.MaintenanceUserNotFound],
  [Errors.InvalidAuthToken, Errors.MaintenanceInvalidAuthToken],
];

function rawAuthError(e: unknown): unknown {
  if (!(e instanceof EtcdError)) return e;
  const m = RAW.find(([from]) => from.id === e.id);
  return m ? new EtcdError(m[1]) : e;
}

/** Identity then etcd IsAdminPermitted; `fn` runs only for root (or with auth off). */
function admitAdmin(auth: AuthGateway, call: CallLike, failed: (e: unknown) => void, fn: () => void, raw: boolean): void {
  const fail = raw ? (e: unknown) => failed(rawAuthError(e)) : failed;
  withIdentity(auth, call, fail, (ai) => {
    const e: EtcdError | null = auth.adminError(ai);
    if (e !== null) fail(e);
    else fn();
  });
}

/**
 * Wraps the named handlers of `impl` so they run only for an admin (etcd authMaintenanceServer: Defragment,
 * Snapshot, Hash, HashKV; the membership changes). Unary and server-streaming handlers are supported. `raw`: answer
 * with the auth package's errors as etcd's maintenance server does (Unknown, "auth: …").
 */
export function guardAdmin(auth: AuthGateway | undefined, impl: UntypedServiceImplementation, names: string[], logger?: GrpcLogger, raw = false): UntypedServiceImplementation {
  if (auth === undefined) return impl;
  const out: UntypedServiceImplementation = { ...impl };
  for (const name of names) {
    const h = impl[name];
    if (h === undefined) continue;
    if (h.length >= 2) {
      const unary = h as handleUnaryCall<Buffer, Uint8Array>;
      out[name] = ((call, cb) => admitAdmin(auth, call, (e) => cb(toStatus(e, logger)), () => unary(call, cb), raw)) as handleUnaryCall<Buffer, Uint8Array>;
    } else {
      const stream = h as handleServerStreamingCall<Buffer, Uint8Array>;
      out[name] = ((call: ServerWritableStream<Buffer, Uint8Array>) =>
        admitAdmin(auth, call, (e) => call.emit('error', toStatus(e, logger)), () => stream(call), raw)) as handleServerStreamingCall<Buffer, Uint8Array>;
    }
  }
  return out;
}
