/**
 * etcd api: v3lockpb.Lock handlers over the raw codec (src/api/grpc/services.ts), etcd 3.4 semantics: see
 * src/concurrency/mutex.ts. A Lock call the client cancels (or whose deadline passes) while it waits deletes its
 * key. Errors reach the client as etcd's do: code Unknown with the message (etcd's lock server relays its embedded
 * client's errors).
 */
import type { handleUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { messageType } from '../../wire/codec';
import { asServiceStatus, type ConcurrencyHost } from '../../concurrency/host';
import { lock, unlock } from '../../concurrency/mutex';
import { LockService } from './services';
import { toStatus, unmarshalError, type GrpcLogger } from './status';
import type { ExtraService } from './server';

type Unary = handleUnaryCall<Buffer, Uint8Array>;

const T = {
  LockRequest: messageType('v3lockpb.LockRequest'),
  LockResponse: messageType('v3lockpb.LockResponse'),
  UnlockRequest: messageType('v3lockpb.UnlockRequest'),
  UnlockResponse: messageType('v3lockpb.UnlockResponse'),
};

/** An AbortSignal that fires when the call is cancelled (client cancel, deadline, connection loss). */
export function callSignal(call: { cancelled: boolean; on(ev: 'cancelled', fn: () => void): unknown }): AbortSignal {
  const ac = new AbortController();
  if (call.cancelled) ac.abort();
  else call.on('cancelled', () => ac.abort());
  return ac.signal;
}

/** Builds the Lock service handlers, keyed by proto method name. */
export function createLockHandlers(host: ConcurrencyHost, logger?: GrpcLogger): UntypedServiceImplementation & Record<'Lock' | 'Unlock', Unary> {
  const Lock: Unary = (call, cb) => {
    let req: { name: Uint8Array; lease: number };
    try {
      req = T.LockRequest.decode(call.request) as unknown as typeof req;
    } catch (e) {
      return cb(unmarshalError(e));
    }
    lock(host, req.name ?? Buffer.alloc(0), req.lease, callSignal(call)).then(
      (r) => cb(null, T.LockResponse.encode({ header: r.header, key: r.key }).finish()),
      (err: unknown) => cb(toStatus(asServiceStatus(err), logger)),
    );
  };

  const Unlock: Unary = (call, cb) => {
    let req: { key: Uint8Array };
    try {
      req = T.UnlockRequest.decode(call.request) as unknown as typeof req;
    } catch (e) {
      return cb(unmarshalError(e));
    }
    unlock(host, Buffer.from(req.key ?? [])).then(
      (header) => cb(null, T.UnlockResponse.encode({ header }).finish()),
      (err: unknown) => cb(toStatus(asServiceStatus(err), logger)),
    );
  };

  return { Lock, Unlock };
}

/** The Lock service entry for createGrpcServer's `extraServices`. */
export function lockServiceEntry(host: ConcurrencyHost, logger?: GrpcLogger): ExtraService {
  return { definition: LockService, implementation: createLockHandlers(host, logger) };
}
