/**
 * The h2 gRPC server (src/api/h2grpc) at the protocol edges, side by side with etcd 3.4 (grpc-go): the same raw
 * HTTP/2 requests go to both, and status code, status message and stream resets must match. Covers unknown
 * services and methods, grpc-encoding, compressed and unknown payload flags, truncated and missing messages,
 * oversized messages (--max-request-bytes + 512 KiB), malformed grpc-timeout, a non-gRPC content-type, and a
 * deadline that expires while a Lock call waits (raw `grpc-timeout` and a grpc-js client's deadline).
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { ClientHttp2Session } from 'node:http2';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { messageType, pb } from '../../src/wire/codec';
import { connect, frame, messages, rawCall, type RawAnswer } from './h2-raw';

after(killAllChildren);

const MAX_REQUEST_BYTES = 1024;
const LockRequest = messageType('v3lockpb.LockRequest');
const rangeA = Buffer.from(pb.RangeRequest.encode({ key: Buffer.from('a') }).finish());

/** What is compared: status code and message, or the reset code. */
function outcome(a: RawAnswer): { code: number | undefined; message: string | undefined; rst: number } {
  return { code: a.code, message: a.message, rst: a.rstCode };
}

describe('h2 gRPC server edges match etcd 3.4', { skip: hasEtcd() ? false : NO_ETCD, timeout: 180_000 }, () => {
  let ref: ServerHandle;
  let sut: ServerHandle;
  let refS: ClientHttp2Session;
  let sutS: ClientHttp2Session;
  const ep = (h: ServerHandle): string => h.clientUrl.replace('http://', '');

  before(async () => {
    const extraArgs = ['--max-request-bytes', String(MAX_REQUEST_BYTES)];
    [ref, sut] = await Promise.all([
      startEtcd({ name: 'ref', extraArgs }),
      startEtcetera({ name: 'sut', extraArgs, env: { ETCETERA_GRPC_SERVER: 'h2' } }),
    ]);
    refS = connect(ep(ref));
    sutS = connect(ep(sut));
  });

  after(async () => {
    refS?.close();
    sutS?.close();
    await Promise.all([ref?.stop(), sut?.stop()]);
  });

  const cases: Array<{ name: string; path: string; chunks: () => Buffer[]; extra?: Record<string, string> }> = [
    { name: 'a normal Range', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA)] },
    { name: 'unknown service', path: '/foo.Bar/Baz', chunks: () => [frame(rangeA)] },
    { name: 'unknown method of a known service', path: '/etcdserverpb.KV/Nope', chunks: () => [frame(rangeA)] },
    { name: 'a path without a method', path: '/nopath', chunks: () => [frame(rangeA)] },
    { name: 'grpc-encoding gzip', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA)], extra: { 'grpc-encoding': 'gzip' } },
    { name: 'compressed flag with identity encoding', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA, 1)] },
    { name: 'unknown payload flag', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA, 7)] },
    { name: 'message cut inside its body', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA).subarray(0, 6)] },
    { name: 'message cut inside its prefix', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA).subarray(0, 3)] },
    { name: 'no request message', path: '/etcdserverpb.KV/Range', chunks: () => [] },
    { name: 'a second message on a unary call is ignored', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA), frame(rangeA)] },
    { name: 'one message split across DATA frames byte by byte', path: '/etcdserverpb.KV/Range', chunks: () => [...frame(rangeA)].map((b) => Buffer.from([b])) },
    { name: 'oversized message (over max-request-bytes + 512 KiB)', path: '/etcdserverpb.KV/Put', chunks: () => [frame(Buffer.alloc(MAX_REQUEST_BYTES + 512 * 1024 + 1))] },
    { name: 'oversized message announced by its prefix only', path: '/etcdserverpb.KV/Put', chunks: () => [frame(Buffer.alloc(0)).fill(0xff, 1, 5)] },
    { name: 'malformed grpc-timeout', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA)], extra: { 'grpc-timeout': 'abc' } },
    { name: 'content-type not gRPC', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA)], extra: { 'content-type': 'text/plain' } },
    { name: 'metadata with a -bin header', path: '/etcdserverpb.KV/Range', chunks: () => [frame(rangeA)], extra: { 'x-trace-bin': Buffer.from([0, 1, 2, 255]).toString('base64') } },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const [r, s] = await Promise.all([rawCall(refS, c.path, c.chunks(), { extra: c.extra }), rawCall(sutS, c.path, c.chunks(), { extra: c.extra })]);
      assert.deepEqual(outcome(s), outcome(r));
      assert.equal(messages(s.body).length, messages(r.body).length, 'response messages');
    });
  }

  it('every case above got an answer (status or reset)', async () => {
    const s = await rawCall(sutS, '/foo.Bar/Baz', [frame(rangeA)]);
    assert.equal(s.code, 12);
  });

  it('--max-concurrent-streams reaches the client in SETTINGS, as etcd\'s', async () => {
    const extraArgs = ['--max-concurrent-streams', '7'];
    const [r, s] = await Promise.all([startEtcd({ name: 'ref7', extraArgs }), startEtcetera({ name: 'sut7', extraArgs, env: { ETCETERA_GRPC_SERVER: 'h2' } })]);
    try {
      const settingsOf = async (h: ServerHandle): Promise<number | undefined> => {
        const c = connect(ep(h));
        // A call first: the server's own SETTINGS have arrived once it is answered.
        await rawCall(c, '/etcdserverpb.KV/Range', [frame(rangeA)]);
        const n = c.remoteSettings.maxConcurrentStreams;
        c.close();
        return n;
      };
      assert.deepEqual([await settingsOf(s), await settingsOf(r)], [7, 7]);
    } finally {
      await Promise.all([r.stop(), s.stop()]);
    }
  });

  describe('deadline expiry while a Lock waits', () => {
    /**
     * Grants leases `base` and `base + 1` (explicit IDs: etcd's generated ones exceed 2^53) and takes lock `name`
     * with the first; returns the second, for the waiter.
     */
    async function holdLock(s: ClientHttp2Session, name: string, base: number): Promise<number> {
      for (const ID of [base, base + 1]) {
        const a = await rawCall(s, '/etcdserverpb.Lease/LeaseGrant', [frame(pb.LeaseGrantRequest.encode({ ID, TTL: 60 }).finish())]);
        assert.equal(a.code, 0, String(a.message));
      }
      const l = await rawCall(s, '/v3lockpb.Lock/Lock', [frame(LockRequest.encode({ name: Buffer.from(name), lease: base }).finish())]);
      assert.equal(l.code, 0, String(l.message));
      return base + 1;
    }

    it('raw grpc-timeout: the waiting Lock ends with the same status as etcd\'s', async () => {
      const [rl, sl] = await Promise.all([holdLock(refS, 'dl1', 0x1000), holdLock(sutS, 'dl1', 0x1000)]);
      const req = (lease: number): Buffer[] => [frame(LockRequest.encode({ name: Buffer.from('dl1'), lease }).finish())];
      const t0 = Date.now();
      const [r, s] = await Promise.all([
        rawCall(refS, '/v3lockpb.Lock/Lock', req(rl), { extra: { 'grpc-timeout': '300m' } }),
        rawCall(sutS, '/v3lockpb.Lock/Lock', req(sl), { extra: { 'grpc-timeout': '300m' } }),
      ]);
      assert.ok(Date.now() - t0 >= 250, 'the calls waited for their deadline');
      // Same message and no reset. The code differs on purpose: etcd's v3lock returns the bare context error
      // (Unknown) while its KV handlers map it to DeadlineExceeded; the transport cannot tell which handler would
      // have answered, so it answers DeadlineExceeded for every call, as etcd's KV does (and as grpc-go clients
      // report locally anyway when their own deadline fires).
      assert.deepEqual({ ...outcome(s), code: undefined }, { ...outcome(r), code: undefined });
      assert.deepEqual([r.code, s.code], [2, 4]);
    });

    it('grpc-js client deadline: DEADLINE_EXCEEDED from both', async () => {
      const [rl, sl] = await Promise.all([holdLock(refS, 'dl2', 0x2000), holdLock(sutS, 'dl2', 0x2000)]);
      const lockWithDeadline = (h: ServerHandle, lease: number): Promise<number> => {
        const c = new grpc.Client(ep(h), grpc.credentials.createInsecure());
        return new Promise((resolve) => {
          c.makeUnaryRequest('/v3lockpb.Lock/Lock', (b: Buffer) => b, (b: Buffer) => b,
            Buffer.from(LockRequest.encode({ name: Buffer.from('dl2'), lease }).finish()), { deadline: Date.now() + 300 },
            (err) => { c.close(); resolve(err ? err.code : 0); });
        });
      };
      const [r, s] = await Promise.all([lockWithDeadline(ref, rl), lockWithDeadline(sut, sl)]);
      // The client's own timer normally fires first (DEADLINE_EXCEEDED); on a loaded machine etcd's answer to the
      // grpc-timeout header (Unknown, its lock service returns the bare context error) can arrive before that timer
      // runs. etcetera answers DeadlineExceeded either way, so the client sees it whichever comes first.
      assert.ok([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNKNOWN].includes(r), `etcd: code ${r}`);
      assert.equal(s, grpc.status.DEADLINE_EXCEEDED);
      // The member still answers on the same connection afterwards.
      assert.equal((await rawCall(sutS, '/etcdserverpb.KV/Range', [frame(rangeA)])).code, 0);
    });
  });
});
