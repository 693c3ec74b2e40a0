/**
 * The Cluster capability (src/server/cluster.ts) against a small fake of its host: real memberships, real pending
 * proposals, a scripted Raft host. The calls' checks in etcd's order, the ConfChange each proposes, the answer once
 * it is applied, and the publication of this member's attributes. Real clusters: test/cluster/membership.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Cluster, HEALTH_INTERVAL_MS, PUBLISH_RETRY_MS, type ClusterHost } from '../../src/server/cluster';
import { twoMemberMembership } from './two-members';
import { decodeConfChange } from '../../src/server/conf-change';
import { PendingProposals } from '../../src/server/pending-proposals';
import { EntryKind } from '../../src/wire/entry';
import { EtcdError, Errors } from '../../src/errors';

function setup(opts: { lead?: number; stopped?: boolean; progress?: Map<number, { match: number }>; activeSince?: (id: number) => number } = {}) {
  const membership = twoMemberMembership();
  const other = membership.members.find((m) => m.id !== membership.localId)!;
  other.clientUrls = ['http://127.0.0.1:22'];
  const proposed: { data: Uint8Array; onDropped: () => void }[] = [];
  const proposals: { kind: EntryKind; request: Uint8Array }[] = [];
  let proposeOutcome: () => Promise<Uint8Array> = () => Promise.resolve(new Uint8Array(0));
  let nextId = 100;
  const state = { lead: opts.lead ?? membership.localId, stopped: opts.stopped ?? false };
  const pending = new PendingProposals(60_000);
  const host: ClusterHost = {
    membership,
    localName: 'a',
    advertiseClientUrls: ['http://127.0.0.1:11'],
    identity: () => ({ clusterId: membership.clusterId, memberId: membership.localId, raftTerm: 3 }),
    stopped: () => state.stopped,
    lead: () => state.lead,
    raft: {
      proposeConfChange: (data, onDropped) => void proposed.push({ data, onDropped }),
      status: () => ({ id: membership.localId, lead: state.lead, progress: opts.progress }) as never,
    },
    pending,
    nextRequestId: () => nextId++,
    propose: (kind, request) => {
      proposals.push({ kind, request });
      return proposeOutcome();
    },
    activeSince: opts.activeSince ?? (() => Date.now() - 60_000),
  };
  return {
    cluster: new Cluster(host), membership, other, proposed, proposals, pending, state,
    setPropose(f: () => Promise<Uint8Array>) { proposeOutcome = f; },
  };
}

async function rejectsWith(p: Promise<unknown>, e: { message: string }): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof EtcdError && err.details === e.message);
}

test('members: every member with its URLs, this member\'s client URLs from its flags, a header with revision 0', () => {
  const { cluster, membership, other } = setup();
  const r = cluster.members();
  assert.deepEqual(r.header, { clusterId: membership.clusterId, memberId: membership.localId, raftTerm: 3, revision: 0 });
  assert.equal(r.members.length, 2);
  const self = r.members.find((m) => m.ID === membership.localId)!;
  assert.deepEqual(self.clientURLs, ['http://127.0.0.1:11']);
  assert.deepEqual(r.members.find((m) => m.ID === other.id)!.clientURLs, ['http://127.0.0.1:22']);
  assert.equal(cluster.isLearner(), false);
});

test('addMember proposes an add ConfChange and answers once this member applied it', async () => {
  const { cluster, proposed, pending } = setup();
  const p = cluster.addMember(['http://127.0.0.1:3'], true);
  assert.equal(proposed.length, 1);
  const cc = decodeConfChange(proposed[0]!.data)!;
  assert.equal(cc.body.op, 'add');
  assert.equal(cc.requestId, 100);
  pending.settle(cc.requestId, 0, new Uint8Array(0));
  const r = await p;
  assert.deepEqual(r.member.peerURLs, ['http://127.0.0.1:3']);
  assert.equal(r.member.isLearner, true);
  assert.equal(r.members.length, 2); // the fake host does not apply the change to the membership
});

test('calls are refused in etcd\'s order: stopped, learner, bad URLs; a dropped ConfChange fails with no leader', async () => {
  await rejectsWith(setup({ stopped: true }).cluster.addMember(['http://127.0.0.1:3'], false), Errors.Stopped);
  const learner = setup();
  learner.membership.members.find((m) => m.id === learner.membership.localId)!.isLearner = true;
  await rejectsWith(learner.cluster.removeMember(learner.other.id), Errors.NotSupportedForLearner);
  const s = setup();
  await rejectsWith(s.cluster.addMember(['not a url'], false), Errors.MemberBadURLs);
  await rejectsWith(s.cluster.updateMember(s.other.id, ['ftp://x']), Errors.MemberBadURLs);
  assert.equal(s.proposed.length, 0);
  const d = setup();
  const p = d.cluster.updateMember(d.other.id, ['http://127.0.0.1:5']);
  d.state.lead = 0;
  d.proposed[0]!.onDropped();
  await rejectsWith(p, Errors.NoLeader);
});

test('strict reconfiguration: a voter is added or removed only while every voter is connected for 5 s (Unhealthy)', async () => {
  // Both members started, the peer's stream open only 1 s: etcd's isConnectedFullySince fails.
  const fresh = setup({ activeSince: () => Date.now() - 1000 });
  await rejectsWith(fresh.cluster.addMember(['http://127.0.0.1:3'], false), Errors.Unhealthy);
  // A learner needs no connectivity; neither does removing a peer this member has no stream to (it is down).
  const down = setup({ activeSince: () => 0 });
  void down.cluster.addMember(['http://127.0.0.1:3'], true);
  void down.cluster.removeMember(down.other.id);
  assert.equal(down.proposed.length, 2);
  await rejectsWith(down.cluster.addMember(['http://127.0.0.1:4'], false), Errors.Unhealthy);
  // Removing this member itself while the peer just connected would leave no connected quorum.
  await rejectsWith(fresh.cluster.removeMember(fresh.membership.localId), Errors.Unhealthy);
  const ok = setup();
  void ok.cluster.addMember(['http://127.0.0.1:3'], false);
  assert.equal(ok.proposed.length, 1);
  assert.equal(HEALTH_INTERVAL_MS, 5000);
});

test('promoteMember: only the leader decides (NotLeader elsewhere); a learner behind the leader is not ready', async () => {
  const follower = setup();
  await rejectsWith(follower.cluster.promoteMember(follower.other.id), Errors.NotLeader);
  const s = setup();
  const leaderId = s.membership.localId;
  const behind = setup({ progress: new Map([[leaderId, { match: 100 }], [s.other.id, { match: 10 }]]) });
  await rejectsWith(behind.cluster.promoteMember(behind.other.id), Errors.LearnerNotReady);
  const ready = setup({ progress: new Map([[leaderId, { match: 100 }], [s.other.id, { match: 95 }]]) });
  const p = ready.cluster.promoteMember(ready.other.id);
  const cc = decodeConfChange(ready.proposed[0]!.data)!;
  assert.deepEqual(cc.body, { op: 'promote', id: ready.other.id });
  ready.pending.settle(cc.requestId, 0, new Uint8Array(0));
  assert.equal((await p).length, 2);
});

test('leaderClientUrls are the known leader\'s; none without a leader', () => {
  const s = setup();
  s.state.lead = s.other.id;
  assert.deepEqual(s.cluster.leaderClientUrls(), ['http://127.0.0.1:22']);
  s.state.lead = 0;
  assert.deepEqual(s.cluster.leaderClientUrls(), []);
});

test('publishAttributes proposes this member\'s name and client URLs, retries after a failure, then stops', async () => {
  const s = setup();
  let fail = true;
  s.setPropose(() => (fail ? Promise.reject(new Error('no leader')) : Promise.resolve(new Uint8Array(0))));
  s.cluster.publishAttributes();
  assert.equal(s.proposals.length, 1);
  assert.equal(s.proposals[0]!.kind, EntryKind.MemberAttributes);
  assert.deepEqual(JSON.parse(Buffer.from(s.proposals[0]!.request).toString()), { id: s.membership.localId, name: 'a', clientUrls: ['http://127.0.0.1:11'] });
  fail = false;
  const deadline = Date.now() + 30_000;
  while (!s.cluster.published && Date.now() < deadline) await new Promise((r) => setTimeout(r, PUBLISH_RETRY_MS / 5));
  assert.equal(s.cluster.published, true);
  assert.equal(s.proposals.length, 2);
  s.cluster.publishAttributes();
  assert.equal(s.proposals.length, 2);
});
