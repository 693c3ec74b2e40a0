/**
 * The Maintenance capability (src/server/maintenance.ts) against a small fake of its host: Status's fields and
 * etcd 3.4's error list, Alarm GET and changes through Raft, Defragment's report of the new size, HashKV's header,
 * MoveLeader's checks and its cap at the request timeout, and the worker counters. Hash and Snapshot read a real
 * store and are covered end to end in test/snapshot/.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Maintenance, SERVER_VERSION, maintenanceGateway, type MaintenanceHost } from '../../src/server/maintenance';
import { twoMemberMembership } from './two-members';
import { ApplyWord } from '../../src/apply/apply-status';
import { EntryKind } from '../../src/wire/entry';
import { ALARM_NOSPACE } from '../../src/wire/alarm';
import { EtcdError, Errors } from '../../src/errors';
import { createLogger } from '../../src/log';

function setup(opts: { lead?: number; alarms?: { memberID: number; alarm: number }[]; learner?: boolean; requestTimeoutMs?: number } = {}) {
  const membership = twoMemberMembership();
  const other = membership.members.find((m) => m.id !== membership.localId)!;
  const state = { lead: opts.lead ?? membership.localId, stopped: false, dbSize: 8192, defrags: 0, defragmentedTo: -1 };
  const alarms = opts.alarms ?? [];
  const proposals: { kind: EntryKind; request: Uint8Array }[] = [];
  const transfers: number[] = [];
  const events = new EventEmitter();
  const words: Partial<Record<ApplyWord, number>> = { [ApplyWord.AlarmCount]: alarms.length, [ApplyWord.MvccKeys]: 7 };
  const host: MaintenanceHost = {
    logger: createLogger('error'),
    memberDir: '/nonexistent',
    membership,
    sm: {
      dbSizeBytes: () => state.dbSize,
      dbSizeInUseBytes: () => 4096,
      appliedIndex: () => 41,
      currentRevision: () => 9,
      defragment: async () => {
        state.defrags++;
        state.dbSize = 1024;
      },
      reader: { alarms: () => alarms } as never,
      hashKVOffThread: async (rev: number) => ({ hash: 1234, compactRevision: 2, currentRevision: rev || 9 }),
      withStoreEnv: (fn) => fn(),
      applyWord: (w) => words[w] ?? 0,
      applyStatus: () => undefined as never,
      ringUsedBytes: () => ({ applyIn: 10, applyOut: 20 }),
    },
    walStats: () => ({ ringUsedBytes: 30, writeBytes: 4000 }),
    raftStatus: () => ({ lead: state.lead, commit: 42, term: 5 }),
    identity: () => ({ clusterId: membership.clusterId, memberId: membership.localId, raftTerm: 5 }),
    stopped: () => state.stopped,
    isLearner: () => opts.learner ?? false,
    propose: (kind, request) => {
      proposals.push({ kind, request });
      return Promise.resolve(Uint8Array.of(1));
    },
    moveLeaderHost: { lead: () => state.lead, members: () => membership.members, transferLeader: (to) => void transfers.push(to), events },
    requestTimeoutMs: opts.requestTimeoutMs ?? 60_000,
    onDefragmented: (size) => {
      state.defragmentedTo = size;
    },
  };
  return { m: new Maintenance(host), membership, other, state, proposals, transfers };
}

test('status: sizes, indexes, term, version; errors list "no leader" then each alarm as etcd 3.4 prints it', () => {
  const ok = setup();
  const st = ok.m.status();
  assert.equal(st.version, SERVER_VERSION);
  assert.deepEqual(st.header, { clusterId: ok.membership.clusterId, memberId: ok.membership.localId, raftTerm: 5, revision: 9 });
  assert.deepEqual([st.dbSize, st.dbSizeInUse, st.leader, st.raftIndex, st.raftTerm, st.raftAppliedIndex], [8192, 4096, ok.membership.localId, 42, 5, 41]);
  assert.deepEqual(st.errors, []);
  assert.equal(st.isLearner, false);
  const bad = setup({ lead: 0, alarms: [{ memberID: 5, alarm: ALARM_NOSPACE }], learner: true });
  const st2 = bad.m.status();
  assert.deepEqual(st2.errors, [Errors.NoLeader.message, 'memberID:5 alarm:NOSPACE ']);
  assert.equal(st2.isLearner, true);
  assert.deepEqual(bad.m.alarms().alarms, [{ memberID: 5, alarm: ALARM_NOSPACE }]);
});

test('alarm changes go through Raft as Alarm entries; GET reads the local store', async () => {
  const s = setup();
  const res = await s.m.alarmChange(Uint8Array.of(9, 9));
  assert.deepEqual(res, Uint8Array.of(1));
  assert.deepEqual(s.proposals.map((p) => p.kind), [EntryKind.Alarm]);
  assert.deepEqual(s.m.alarms().alarms, []);
});

test('defragment swaps the store, reports the new size, answers {}; a stopped member refuses', async () => {
  const s = setup();
  assert.deepEqual(await s.m.defragment(), {});
  assert.equal(s.state.defrags, 1);
  assert.equal(s.state.defragmentedTo, 1024);
  s.state.stopped = true;
  await assert.rejects(s.m.defragment(), (e: unknown) => e instanceof EtcdError && e.details === Errors.Stopped.message);
  await assert.rejects(s.m.hashKV(0), (e: unknown) => e instanceof EtcdError && e.details === Errors.Stopped.message);
  assert.equal(s.state.defrags, 1);
});

test('hashKV answers the state machine\'s off-thread hash with the hashed revision in the header', async () => {
  const s = setup();
  const r = await s.m.hashKV(6);
  assert.deepEqual([r.hash, r.compactRevision, r.header.revision], [1234, 2, 6]);
});

test('moveLeader: a follower answers "not leader"; the wait is capped at the request timeout', async () => {
  const follower = setup();
  follower.state.lead = follower.other.id;
  await assert.rejects(follower.m.moveLeader(follower.membership.localId, 1000), (e: unknown) => e instanceof EtcdError && e.details === Errors.NotLeader.message);
  const s = setup({ requestTimeoutMs: 30 });
  const keepAlive = setTimeout(() => {}, 10_000);
  try {
    await assert.rejects(s.m.moveLeader(s.other.id, 600_000), (e: unknown) => e instanceof EtcdError && e.details === Errors.TimeoutLeaderTransfer.message);
  } finally {
    clearTimeout(keepAlive);
  }
  assert.deepEqual(s.transfers, [s.other.id]);
});

test('worker counters: live keys, ring occupancy of all three rings, WAL bytes', () => {
  const s = setup();
  assert.equal(s.m.liveKeys(), 7);
  assert.deepEqual(s.m.ringOccupancy(), { walIn: 30, applyIn: 10, applyOut: 20 });
  assert.equal(s.m.walWriteBytes(), 4000);
});

test('the gateway the Maintenance and Cluster services see is bound to both capabilities', async () => {
  const s = setup();
  const members = { header: { clusterId: 1, memberId: 2, raftTerm: 3, revision: 0 }, members: [] };
  const g = maintenanceGateway(s.m, {
    members: () => members,
    addMember: async () => ({ member: { ID: 1, name: '', peerURLs: [], clientURLs: [], isLearner: true }, members: [] }),
    removeMember: async () => [],
    promoteMember: async () => [],
    updateMember: async () => [],
    leaderClientUrls: () => ['http://x:1'],
    isLearner: () => false,
  });
  assert.equal(g.status().raftIndex, 42);
  assert.equal(g.members(), members);
  assert.deepEqual(g.leaderClientUrls!(), ['http://x:1']);
  assert.deepEqual(await g.defragment!(), {});
});
