/**
 * Named bounds on per-stream buffers and their answer at the limit: a LeaseKeepAlive stream whose requests wait
 * behind a slow renewal (src/api/grpc/lease-service.ts MAX_QUEUED_KEEPALIVES_PER_STREAM) and a Watch stream whose
 * requests wait for its token check (src/api/grpc/watch-service.ts MAX_WATCH_REQUESTS_AWAITING_AUTH) both fail
 * with etcd's "too many requests" (ResourceExhausted) instead of buffering without end; below the bound every
 * request is answered in order. The handlers get a fake call object and fakes of the lessor / auth host.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { MAX_QUEUED_KEEPALIVES_PER_STREAM, createLeaseHandlers } from '../../src/api/grpc/lease-service';
import { MAX_WATCH_REQUESTS_AWAITING_AUTH, createWatchHandlers } from '../../src/api/grpc/watch-service';
import type { Lessor } from '../../src/lease/lessor';
import type { AuthGateway } from '../../src/api/grpc/gateway';
import type { WatchHub } from '../../src/watch/hub';
import { pb } from '../../src/wire/codec';
import { Errors } from '../../src/errors';

class FakeCall extends EventEmitter {
  readonly metadata = new grpc.Metadata();
  readonly written: Buffer[] = [];
  ended = false;
  write(b: Buffer, cb?: () => void): boolean {
    this.written.push(Buffer.from(b));
    cb?.();
    return true;
  }
  end(): void {
    this.ended = true;
  }
  getPeer(): string {
    return 'test';
  }
}

function errorsOf(call: FakeCall): { code: number; details: string }[] {
  const errs: { code: number; details: string }[] = [];
  call.on('error', (e: { code: number; details: string }) => errs.push({ code: e.code, details: e.details }));
  return errs;
}

function leaseHandlers(maxQueuedKeepAlives?: number) {
  const renewals: Array<() => void> = [];
  const lessor = {
    isLeading: () => true,
    tryRenewSync: () => undefined, // every renewal takes the slow path
    renew: () => new Promise<number>((resolve) => renewals.push(() => resolve(30))),
  } as unknown as Lessor;
  const server = {
    propose: () => Promise.reject(new Error('unused')),
    leader: () => ({ lead: 1, isLeader: true, term: 2 }),
    identity: () => ({ clusterId: 1, memberId: 1, raftTerm: 2 }),
    leaderClientUrls: () => [],
    events: new EventEmitter(),
    reader: { currentRevision: () => 5 },
  };
  const h = createLeaseHandlers({ server, lessor, minTtlSeconds: 2, requestTimeoutMs: 1000, maxQueuedKeepAlives });
  return { h, renewals };
}

const keepAlive = (id: number): Buffer => Buffer.from(pb.LeaseKeepAliveRequest.encode({ ID: id }).finish());

test('keep-alive: requests behind a slow renewal are answered in order up to the bound', async () => {
  const { h, renewals } = leaseHandlers(4);
  const call = new FakeCall();
  const errs = errorsOf(call);
  h.implementation.LeaseKeepAlive(call as never);
  for (let id = 1; id <= 5; id++) call.emit('data', keepAlive(id)); // one renewing, four waiting: at the bound
  assert.deepEqual(errs, []);
  for (let i = 0; i < 5; i++) {
    while (renewals.length === 0) await new Promise((r) => setImmediate(r));
    renewals.shift()!();
  }
  while (call.written.length < 5) await new Promise((r) => setImmediate(r));
  assert.deepEqual(call.written.map((b) => (pb.LeaseKeepAliveResponse.decode(b) as unknown as { ID: number; TTL: number }).ID), [1, 2, 3, 4, 5]);
  h.close();
});

test('keep-alive: one request past the bound fails the stream with "too many requests"', () => {
  assert.ok(Number.isInteger(MAX_QUEUED_KEEPALIVES_PER_STREAM) && MAX_QUEUED_KEEPALIVES_PER_STREAM > 0);
  const { h } = leaseHandlers(4);
  const call = new FakeCall();
  const errs = errorsOf(call);
  h.implementation.LeaseKeepAlive(call as never);
  for (let id = 1; id <= 6; id++) call.emit('data', keepAlive(id));
  assert.deepEqual(errs, [{ code: grpc.status.RESOURCE_EXHAUSTED, details: Errors.RequestTooManyRequests.message }]);
  call.emit('data', keepAlive(7)); // ignored once failed
  assert.equal(errs.length, 1);
  h.close();
});

test('watch: requests waiting for the token check are bounded; past the bound the stream fails with "too many requests"', () => {
  assert.ok(Number.isInteger(MAX_WATCH_REQUESTS_AWAITING_AUTH) && MAX_WATCH_REQUESTS_AWAITING_AUTH > 0);
  const auth = { enabled: true, identify: () => new Promise(() => {}) } as unknown as AuthGateway; // never verified
  const hub = { add: () => {}, remove: () => {}, pendingDelta: () => {}, kick: () => {} } as unknown as WatchHub;
  const handlers = createWatchHandlers({ hub, auth, progressIntervalMs: 0 });
  const call = new FakeCall();
  const errs = errorsOf(call);
  (handlers.Watch as (c: unknown) => void)(call);
  const req = Buffer.from(pb.WatchRequest.encode({ create_request: { key: Buffer.from('k') } }).finish());
  for (let i = 0; i < MAX_WATCH_REQUESTS_AWAITING_AUTH; i++) call.emit('data', req); // the first starts the check
  assert.deepEqual(errs, []);
  call.emit('data', req);
  assert.deepEqual(errs, [{ code: grpc.status.RESOURCE_EXHAUSTED, details: Errors.RequestTooManyRequests.message }]);
});
