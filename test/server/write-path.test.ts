/**
 * The write path (src/server/write-path.ts) against a small fake of its host: real admission, pending proposals and
 * faults, a scripted Raft host and apply worker. Entry framing (plain and Authed), answers from apply results,
 * "too many requests" when the Raft host's queue is full, etcd's errors for dropped proposals, the hand-off of
 * committed entries (Authenticate entries reported, membership entries taken out), and the fault handling that
 * fails every waiting proposal. End to end: test/server/overload.test.ts, full-disk.test.ts and the KV tests.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { WritePath } from '../../src/server/write-path';
import { Admission } from '../../src/server/admission';
import { PendingProposals } from '../../src/server/pending-proposals';
import { Faults } from '../../src/server/health';
import { EntryKind, decodeAuthedPayload, decodeEntryData, encodeEntryData } from '../../src/wire/entry';
import { AuthOp, encodeAuthMgmt } from '../../src/wire/auth-mgmt';
import { EntryType, type Entry } from '../../src/raft';
import { WalFatalError } from '../../src/wal/client';
import { WalErrorCode } from '../../src/wal/protocol';
import { ApplyFaultCode } from '../../src/apply/apply-status';
import { EtcdError, Errors } from '../../src/errors';
import { createLogger } from '../../src/log';

function setup(opts: { queueFull?: boolean; lead?: number; workerDead?: boolean } = {}) {
  const proposed: Uint8Array[] = [];
  const handed: Entry[][] = [];
  const authenticated: number[] = [];
  const pending = new PendingProposals(60_000);
  const faults = new Faults();
  let nextId = 1;
  const w = new WritePath({
    logger: createLogger('error'),
    admission: new Admission().add('size', (p) => (p.bytes.length > 100 ? 'RequestTooLarge' : null)),
    pending,
    nextRequestId: () => nextId++,
    raft: {
      propose: (data) => {
        if (opts.queueFull) return false;
        proposed.push(data);
        return true;
      },
      status: () => ({ lead: opts.lead ?? 1 }) as never,
    },
    faults,
    applyToWorker: (entries) => {
      if (opts.workerDead) throw new Error('worker exited');
      handed.push(entries);
    },
    takeOutMembership: (entries) => entries.filter((e) => e.data[0] !== EntryKind.MemberAttributes),
    onAuthenticateCommitted: (index) => void authenticated.push(index),
  });
  return { w, proposed, handed, authenticated, pending, faults };
}

const etcdErr = (spec: { message: string }) => (e: unknown): boolean => e instanceof EtcdError && e.details === spec.message;
const entry = (index: number, data: Uint8Array): Entry => ({ index, term: 1, type: EntryType.Normal, data });

test('an admitted request becomes one entry with a fresh request ID and is answered with the apply result', async () => {
  const s = setup();
  const p = s.w.propose(EntryKind.Put, Uint8Array.of(1, 2, 3));
  assert.equal(s.proposed.length, 1);
  const e = decodeEntryData(s.proposed[0]!)!;
  assert.equal(e.kind, EntryKind.Put);
  assert.equal(e.requestId, 1);
  assert.deepEqual([...e.payload], [1, 2, 3]);
  s.pending.settle(1, 0, Uint8Array.of(9));
  assert.deepEqual([...(await p)], [9]);
});

test('with an identity the entry is an Authed wrapper carrying the user and auth revision', () => {
  const s = setup();
  void s.w.propose(EntryKind.DeleteRange, Uint8Array.of(7), undefined, { username: 'alice', revision: 4 }).catch(() => {});
  const e = decodeEntryData(s.proposed[0]!)!;
  assert.equal(e.kind, EntryKind.Authed);
  const a = decodeAuthedPayload(e.payload);
  assert.deepEqual([a.kind, a.username, a.authRevision, [...a.payload]], [EntryKind.DeleteRange, 'alice', 4, [7]]);
  s.pending.failAll(new EtcdError(Errors.Stopped));
});

test('refusals: admission first (nothing proposed), then "too many requests" when the Raft host queue is full', async () => {
  const s = setup();
  await assert.rejects(s.w.propose(EntryKind.Put, new Uint8Array(200)), etcdErr(Errors.RequestTooLarge));
  assert.equal(s.proposed.length, 0);
  const full = setup({ queueFull: true });
  await assert.rejects(full.w.propose(EntryKind.Put, Uint8Array.of(1)), etcdErr(Errors.RequestTooManyRequests));
  assert.equal(full.pending.size, 0);
});

test('dropped proposals fail with "no leader" without one, raft\'s "proposal dropped" with one', async () => {
  for (const [lead, spec] of [[0, Errors.NoLeader], [2, Errors.ProposalDropped]] as const) {
    const s = setup({ lead });
    const p = s.w.propose(EntryKind.Put, Uint8Array.of(1));
    s.w.dropped([...s.proposed]);
    await assert.rejects(p, etcdErr(spec));
    assert.equal(s.pending.size, 0);
  }
});

test('committed entries: Authenticate entries reported in order, membership entries taken out, the rest handed over', () => {
  const s = setup();
  const put = entry(1, encodeEntryData(EntryKind.Put, 1, Uint8Array.of(1)));
  const auth = entry(2, encodeEntryData(EntryKind.AuthMgmt, 2, encodeAuthMgmt(AuthOp.Authenticate, Uint8Array.of())));
  const attrs = entry(3, encodeEntryData(EntryKind.MemberAttributes, 3, Uint8Array.of(1)));
  s.w.committed([put, auth, attrs]);
  assert.deepEqual(s.authenticated, [2]);
  assert.deepEqual(s.handed.map((b) => b.map((e) => e.index)), [[1, 2]]);
});

test('a dead apply worker fails every waiting proposal and stops the hand-off; a WAL failure fails them with NoSpace', async () => {
  const s = setup({ workerDead: true });
  const p = s.w.propose(EntryKind.Put, Uint8Array.of(1));
  s.w.committed([entry(1, encodeEntryData(EntryKind.Put, 5, Uint8Array.of(1)))]);
  await assert.rejects(p, etcdErr(Errors.Stopped));
  assert.equal(s.faults.applyFailed, true);
  s.w.committed([entry(2, encodeEntryData(EntryKind.Put, 6, Uint8Array.of(1)))]); // replayed later, not handed over
  assert.equal(s.handed.length, 0);
  s.w.applyFailed('again', ApplyFaultCode.NoSpace); // the first fault sticks
  assert.equal(s.faults.writeError(), 'Stopped');
  const wal = setup();
  const q = wal.w.propose(EntryKind.Put, Uint8Array.of(1));
  wal.w.walFailed(new WalFatalError(WalErrorCode.NoSpace, 'ENOSPC', 'no space left on device'));
  await assert.rejects(q, etcdErr(Errors.NoSpace));
});

test('expire fails proposals past the request timeout', async () => {
  const s = setup();
  const p = s.w.propose(EntryKind.Put, Uint8Array.of(1));
  assert.equal(s.w.expire(Date.now() + 120_000), 1);
  await assert.rejects(p, etcdErr(Errors.Timeout));
});
