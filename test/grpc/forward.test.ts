/**
 * The one leader-forwarding path (src/api/grpc/forward.ts): local first, the leader otherwise, retries of transport
 * failures and leader changes only, the forwarded-once rule, and etcd's errors at the deadline. The paths through
 * real members are covered by test/lease/ (keep-alive, TimeToLive on followers) and test/cluster/membership.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { callLeader, forwardedMetadata, isForwarded, retriableForward } from '../../src/api/grpc/forward';
import { EtcdError, Errors, etcdError } from '../../src/errors';

const isErr = (spec: { message: string }) => (e: unknown): boolean => e instanceof EtcdError && e.details === spec.message;

test('retriable: transport failures and a remote "not leader"; never a local EtcdError or the leader\'s verdict', () => {
  assert.equal(retriableForward(new Error('socket hang up')), true);
  assert.equal(retriableForward({ code: grpc.status.UNAVAILABLE, details: 'No connection established' }), true);
  assert.equal(retriableForward({ code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }), true);
  assert.equal(retriableForward({ code: grpc.status.FAILED_PRECONDITION, details: Errors.NotLeader.message }), true);
  assert.equal(retriableForward({ code: grpc.status.FAILED_PRECONDITION, details: Errors.LearnerNotReady.message }), false);
  assert.equal(retriableForward({ code: grpc.status.NOT_FOUND, details: Errors.MemberNotFound.message }), false);
  assert.equal(retriableForward(etcdError('NoLeader')), false);
});

test('forwarded metadata marks a call once', () => {
  assert.equal(isForwarded(new grpc.Metadata()), false);
  assert.equal(isForwarded(forwardedMetadata()), true);
});

test('served here when this member can; on "not leader" the call goes to the leader', async () => {
  const remote: string[] = [];
  assert.equal(await callLeader({ timeoutMs: 1000, forwarded: false, local: async () => 'here', leaderUrls: () => ['u'], remote: async () => 'there' }), 'here');
  const r = await callLeader({
    timeoutMs: 1000,
    forwarded: false,
    local: () => Promise.reject(etcdError('NotLeader')),
    leaderUrls: () => ['http://leader:1'],
    remote: async (url) => {
      remote.push(url);
      return 'there';
    },
  });
  assert.equal(r, 'there');
  assert.deepEqual(remote, ['http://leader:1']);
  await assert.rejects(callLeader({ timeoutMs: 1000, forwarded: false, local: () => Promise.reject(etcdError('MemberNotFound')), leaderUrls: () => ['u'], remote: async () => 'x' }), isErr(Errors.MemberNotFound));
});

test('a forwarded call this member cannot serve answers "not leader" and is not forwarded again', async () => {
  let remote = 0;
  await assert.rejects(
    callLeader({ timeoutMs: 1000, forwarded: true, local: () => null, leaderUrls: () => ['u'], remote: async () => String(++remote) }),
    isErr(Errors.NotLeader),
  );
  assert.equal(remote, 0);
});

test('transport failures are retried until the leader answers; its verdict is passed through as is', async () => {
  let attempts = 0;
  const r = await callLeader({
    timeoutMs: 5000,
    forwarded: false,
    local: () => null,
    leaderUrls: () => ['u'],
    remote: async () => {
      if (++attempts < 3) throw { code: grpc.status.UNAVAILABLE, details: 'connection refused' };
      return 'ok';
    },
    retryMs: 5,
  });
  assert.equal(r, 'ok');
  assert.equal(attempts, 3);
  const verdict = { code: grpc.status.FAILED_PRECONDITION, details: Errors.LearnerNotReady.message };
  await assert.rejects(callLeader({ timeoutMs: 5000, forwarded: false, local: () => null, leaderUrls: () => ['u'], remote: () => Promise.reject(verdict) }), (e) => e === verdict);
});

test('at the deadline: "no leader" when none was ever known, "request timed out" when one was', async () => {
  await assert.rejects(callLeader({ timeoutMs: 60, forwarded: false, local: () => null, leaderUrls: () => [], remote: async () => 'x', retryMs: 10 }), isErr(Errors.NoLeader));
  await assert.rejects(
    callLeader({ timeoutMs: 60, forwarded: false, local: () => null, leaderUrls: () => ['u'], remote: () => Promise.reject(new Error('unreachable')), retryMs: 10 }),
    isErr(Errors.Timeout),
  );
});
