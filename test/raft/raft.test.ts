/**
 * Unit tests of the Raft core against the paper's cases (Raft paper figures 7 and 8, thesis §6.2/§6.4/§9.6/§3.10)
 * and the persistence rule of this implementation (a leader counts its own entries only after advance()).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntryType, ErrProposalDropped, MemoryStorage, MessageType, RawNode, StateType, makeMessage } from '../../src/raft';
import { TestCluster, dec, enc, entsWithTerms, persist, prng } from './helpers';

test('single voter: an entry commits only after its own advance()', () => {
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, [1]);
  const n = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage, rand: prng(7) });
  n.campaign();
  assert.equal(n.status().state, StateType.Leader);
  let rd = n.ready();
  assert.equal(rd.entries.length, 1, 'the leader no-op is to be persisted');
  assert.equal(rd.committedEntries.length, 0, 'nothing may be committed before the leader persisted it');
  assert.equal(n.status().commit, 1);
  // propose while the first Ready is outstanding: batched into the next Ready (group commit)
  n.propose(enc('a'));
  n.propose(enc('b'));
  assert.equal(n.hasReady(), false, 'no second Ready while one is outstanding');
  assert.throws(() => n.ready());
  persist(storage, rd);
  n.advance(rd);
  assert.equal(n.status().commit, 2, 'no-op commits once durable');
  rd = n.ready();
  assert.deepEqual(rd.entries.map((e) => dec(e.data)), ['a', 'b']);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [2], 'committed entries are the durable no-op only');
  assert.equal(rd.hardState?.commit, 2);
  assert.equal(n.status().commit, 2, 'a and b are not committed before their fsync');
  persist(storage, rd);
  n.advance(rd);
  assert.equal(n.status().commit, 4);
  rd = n.ready();
  assert.deepEqual(rd.committedEntries.map((e) => dec(e.data)), ['a', 'b']);
  assert.equal(rd.hardState?.commit, 4);
  persist(storage, rd);
  n.advance(rd);
  assert.equal(n.status().applied, 4);
  assert.equal(n.hasReady(), false);
});

test('crash before advance loses the Ready and nothing unpersisted was committed', () => {
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, [1]);
  let n = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage, rand: prng(1) });
  n.campaign();
  let rd = n.ready();
  persist(storage, rd);
  n.advance(rd);
  n.propose(enc('lost'));
  rd = n.ready();
  assert.equal(rd.entries.length, 1);
  assert.equal(n.status().commit, 2);
  // crash: rd never persisted
  n = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage, rand: prng(2) });
  assert.equal(n.status().lastIndex, 2, 'the durable no-op survives');
  assert.equal(n.status().commit, 1, 'the HardState carrying commit=2 was in the lost Ready');
  assert.equal(n.raft.raftLog.allEntries().some((e) => dec(e.data) === 'lost'), false);
});

test('election and replication in a 3-node cluster; followers reply only after persisting', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  const st = c.get(1).node.status();
  assert.equal(st.lead, 1);
  c.get(2).node.propose(enc('x')); // forwarded to the leader
  c.deliver();
  for (const id of [1, 2, 3]) {
    assert.deepEqual(c.get(id).applied.filter((e) => e.data.length > 0).map((e) => dec(e.data)), ['x']);
  }
  // a follower's MsgAppResp is never in `messages` (it must wait for its fsync)
  c.get(1).node.propose(enc('y'));
  const lrd = c.get(1).node.ready();
  assert.ok(lrd.messages.some((m) => m.type === MessageType.MsgApp), 'leader sends MsgApp before its own fsync');
  persist(c.get(1).storage, lrd);
  c.get(1).node.advance(lrd);
  for (const m of lrd.messages) c.get(m.to).node.step(m);
  const frd = c.get(2).node.ready();
  assert.ok(frd.messagesAfterPersist.some((m) => m.type === MessageType.MsgAppResp));
  assert.ok(!frd.messages.some((m) => m.type === MessageType.MsgAppResp));
  persist(c.get(2).storage, frd);
  c.get(2).node.advance(frd);
  for (const m of frd.messagesAfterPersist) c.get(m.to).node.step(m);
  c.deliver();
  assert.equal(c.get(3).node.status().commit, c.get(1).node.status().commit);
});

/** Builds a node whose durable log has entries with `terms` at indexes 1.., at `term`, members `ids`. */
function nodeWithLog(id: number, ids: number[], terms: number[], term: number, commit = 0): MemoryStorage {
  const s = new MemoryStorage({ voters: ids, learners: [] });
  s.append(entsWithTerms(terms));
  s.setHardState({ term, vote: 0, commit });
  return s;
}

test('figure 7: the leader brings each divergent follower to its log', () => {
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, flog] of Object.entries(followers)) {
    const storages = new Map([
      [1, nodeWithLog(1, [1, 2, 3], leaderLog, 7, 3)],
      [2, nodeWithLog(2, [1, 2, 3], flog, 7)],
      [3, nodeWithLog(3, [1, 2, 3], [], 7)],
    ]);
    const c = new TestCluster([1, 2, 3], { preVote: false }, 3, storages);
    c.isolate(3);
    const lead = c.get(1).node;
    lead.campaign(); // term 8
    c.deliver();
    // node 3 is unreachable; grant its vote by hand (as etcd's paper test does)
    lead.step(makeMessage({ type: MessageType.MsgVoteResp, from: 3, to: 1, term: 8 }));
    c.deliver();
    assert.equal(lead.status().state, StateType.Leader, `case ${name}: leader elected`);
    lead.propose(enc('p'));
    c.deliver();
    assert.deepEqual(c.logOf(2), c.logOf(1), `case ${name}: follower log equals leader log`);
    assert.equal(c.logOf(1).length, 12);
    // Commit needs a majority ({1,2}) at term 8.
    assert.equal(lead.status().commit, 12, `case ${name}`);
    // Conflict resolution never needs more round trips than distinct terms (fast back-off).
    const rejects = c.trace.filter((m) => m.type === MessageType.MsgAppResp && m.reject && m.from === 2).length;
    assert.ok(rejects <= 3, `case ${name}: ${rejects} rejections`);
  }
});

test('figure 8: a leader only commits by counting replicas of an entry of its current term', () => {
  // Leader S1 holds entries from terms 1 and 2 (index 1: t1, index 2: t2); becomes leader of term 3.
  const storages = new Map([
    [1, nodeWithLog(1, [1, 2, 3], [1, 2], 2, 1)],
    [2, nodeWithLog(2, [1, 2, 3], [1], 2, 1)],
    [3, nodeWithLog(3, [1, 2, 3], [1], 2, 1)],
  ]);
  const c = new TestCluster([1, 2, 3], { preVote: false }, 5, storages);
  const r = c.get(1).node.raft;
  r.becomeCandidate();
  r.becomeLeader(); // term 3, no-op at index 3
  assert.equal(r.term, 3);
  // persist the leader's own log
  const rd = c.get(1).node.ready();
  persist(c.get(1).storage, rd);
  c.get(1).node.advance(rd);
  assert.equal(r.raftLog.committed, 1);
  // Follower 2 acknowledges index 2 (the term-2 entry): a majority now has index 2, but it is from term 2.
  r.step(makeMessage({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 3, index: 2 }));
  assert.equal(r.raftLog.committed, 1, 'must not commit an entry of a previous term by counting replicas');
  // Once a majority has the term-3 entry, everything up to it commits (index 2 indirectly).
  r.step(makeMessage({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 3, index: 3 }));
  assert.equal(r.raftLog.committed, 3);
});

test('leader does not count its own unpersisted entries toward the quorum', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  const lead = c.get(1).node;
  const commit0 = lead.status().commit;
  lead.propose(enc('z'));
  const rd = lead.ready(); // not persisted yet
  for (const m of rd.messages) c.get(m.to).node.step(m);
  // follower 2 persists and acks
  const f = c.get(2);
  const frd = f.node.ready();
  persist(f.storage, frd);
  f.node.advance(frd);
  for (const m of frd.messagesAfterPersist) if (m.to === 1) lead.step(m);
  // {1,2} is a majority, but 1 has not persisted: with 2 acks out of 3 counting only 2 itself... still a majority
  // requires 2 voters; leader's own match must come from advance(), so commit may only move via 2+3.
  assert.equal(lead.status().commit, commit0, 'leader must not commit before its own fsync when only one follower acked');
  persist(c.get(1).storage, rd);
  lead.advance(rd);
  assert.equal(lead.status().commit, commit0 + 1);
});

test('PreVote: a rejoining partitioned member does not raise the term or disrupt the leader', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  const term = c.get(1).node.status().term;
  c.isolate(3);
  c.tick([1, 2, 3], 100);
  assert.equal(c.get(3).node.status().term, term, 'pre-candidate never bumps its term');
  assert.equal(c.get(3).node.status().state, StateType.PreCandidate);
  c.heal();
  c.tick([1, 2, 3], 20);
  assert.equal(c.get(1).node.status().state, StateType.Leader);
  assert.equal(c.get(1).node.status().term, term, 'leader term unchanged');
  assert.equal(c.get(3).node.status().lead, 1);

  // Contrast: without PreVote (and CheckQuorum) the rejoining node forces a new election at a higher term.
  const d = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
  d.elect(1);
  const t0 = d.get(1).node.status().term;
  d.isolate(3);
  d.tick([1, 2, 3], 100);
  assert.ok(d.get(3).node.status().term > t0);
  d.heal();
  d.tick([1, 2, 3], 30);
  assert.ok(d.get(1).node.status().term > t0, 'without PreVote the old leader was disrupted');
});

test('CheckQuorum: a leader that loses its quorum steps down', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.isolate(1);
  c.tick([1], 9);
  // electionTick(10) with recentActive set by the initial heartbeats: still leader until a full round passes
  c.tick([1], 12);
  assert.equal(c.get(1).node.status().state, StateType.Follower);
  assert.throws(() => c.get(1).node.propose(enc('x')), ErrProposalDropped);
});

test('ReadIndex: leader confirms with one heartbeat round; follower forwards; batched reads', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.get(1).node.propose(enc('w'));
  c.deliver();
  const commit = c.get(1).node.status().commit;
  c.get(1).node.readIndex(enc('r1'));
  c.get(1).node.readIndex(enc('r2'));
  c.get(3).node.readIndex(enc('r3'));
  c.deliver();
  assert.deepEqual(c.get(1).readStates.map((r) => [dec(r.requestCtx), r.index]), [['r1', commit], ['r2', commit]]);
  assert.deepEqual(c.get(3).readStates.map((r) => [dec(r.requestCtx), r.index]), [['r3', commit]]);
});

test('ReadIndex: a new leader delays reads until it has committed an entry in its term', () => {
  const c = new TestCluster([1, 2, 3]);
  c.isolate(2);
  c.isolate(3);
  c.get(1).node.campaign();
  c.deliver();
  // grant votes by hand so 1 leads while 2 and 3 cannot receive its MsgApp
  const r = c.get(1).node.raft;
  r.step(makeMessage({ type: MessageType.MsgPreVoteResp, from: 2, to: 1, term: r.term + 1 }));
  c.deliver();
  r.step(makeMessage({ type: MessageType.MsgVoteResp, from: 2, to: 1, term: r.term }));
  c.deliver();
  assert.equal(r.state, StateType.Leader);
  c.get(1).node.readIndex(enc('early'));
  c.deliver();
  assert.equal(c.get(1).readStates.length, 0, 'no read before committing in the current term');
  assert.equal(r.pendingReadIndexMessages.length, 1);
  c.heal();
  c.tick([1, 2, 3], 3);
  assert.equal(c.get(1).readStates.length, 1);
  assert.equal(c.get(1).readStates[0].index, c.get(1).node.status().commit);
});

test('ReadIndex: a deposed leader never answers', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.get(1).node.propose(enc('before'));
  c.deliver();
  c.isolate(1);
  // 2 takes over and commits a write the old leader does not have
  for (let i = 0; i < 30 && c.leaders().filter((x) => x !== 1).length === 0; i++) c.tick([2, 3], 1);
  const newLeader = c.leaders().find((x) => x !== 1);
  assert.ok(newLeader !== undefined);
  c.get(newLeader).node.propose(enc('after'));
  c.deliver();
  const newCommit = c.get(newLeader).node.status().commit;
  assert.equal(c.get(1).node.status().state, StateType.Leader, 'old leader has not noticed yet');
  c.get(1).node.readIndex(enc('stale'));
  c.deliver();
  c.tick([1], 3);
  assert.equal(c.get(1).readStates.length, 0, 'deposed leader must not answer without a quorum');
  c.heal();
  c.tick([1, 2, 3], 5);
  assert.notEqual(c.get(1).node.status().state, StateType.Leader);
  assert.equal(c.get(1).readStates.length, 0, 'pending read dropped on step-down');
  for (const rs of c.get(1).readStates) assert.ok(rs.index >= newCommit);
});

test('leader transfer: catches the target up, sends MsgTimeoutNow; proposals dropped meanwhile; abort on timeout', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 5; i++) c.get(1).node.propose(enc(`p${i}`));
  c.deliver();
  c.heal();
  // drop MsgApp to 3 once so it stays behind when the transfer starts
  c.get(1).node.transferLeader(3);
  assert.throws(() => c.get(1).node.propose(enc('during')), ErrProposalDropped);
  c.deliver();
  assert.equal(c.get(3).node.status().state, StateType.Leader);
  assert.ok(c.trace.some((m) => m.type === MessageType.MsgTimeoutNow && m.to === 3));
  assert.deepEqual(c.logOf(3).slice(0, c.logOf(1).length), c.logOf(1));

  // a follower forwards the request to the leader, keeping the transferee
  c.get(2).node.transferLeader(1);
  c.deliver();
  assert.equal(c.get(1).node.status().state, StateType.Leader, 'transfer requested on a follower reached the leader');
  c.get(2).node.transferLeader(3);
  c.deliver();
  assert.equal(c.get(3).node.status().state, StateType.Leader);

  // abort: target unreachable, transfer gives up after an election timeout
  c.isolate(2);
  c.get(3).node.transferLeader(2);
  c.deliver();
  assert.equal(c.get(3).node.raft.leadTransferee, 2);
  c.heal();
  c.cut.add('3-2');
  c.tick([3], 11);
  assert.equal(c.get(3).node.raft.leadTransferee, 0);
  c.get(3).node.propose(enc('after-abort'));
});

test('snapshot: a lagging follower is caught up with InstallSnapshot after compaction', () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 20; i++) c.get(1).node.propose(enc(`s${i}`));
  c.deliver();
  const l = c.get(1);
  const applied = l.node.status().applied;
  l.storage.createSnapshot(applied, { voters: [1, 2, 3], learners: [] }, enc(`state@${applied}`));
  l.storage.compact(applied);
  c.heal();
  c.tick([1, 2, 3], 3);
  const snaps = c.trace.filter((m) => m.type === MessageType.MsgSnap && m.to === 3);
  assert.equal(snaps.length, 1);
  // report the snapshot as delivered (the transport would)
  l.node.reportSnapshot(3, true);
  c.tick([1, 2, 3], 3);
  assert.equal(c.get(3).storage.snapshot().metadata.index, applied);
  assert.equal(dec(c.get(3).storage.snapshot().data), `state@${applied}`);
  l.node.propose(enc('post'));
  c.deliver();
  assert.equal(c.get(3).node.status().commit, l.node.status().commit);
  assert.deepEqual(c.logOf(3), c.logOf(1));
  assert.equal(dec(c.get(3).applied[c.get(3).applied.length - 1].data), 'post');
});

test('learner receives entries but never votes or counts for quorum', () => {
  const ids = [1, 2, 3];
  const storages = new Map<number, MemoryStorage>();
  for (const id of ids) {
    const s = new MemoryStorage();
    s.applySnapshot({ metadata: { index: 1, term: 1, confState: { voters: [1, 2], learners: [3] } }, data: new Uint8Array(0) });
    s.setHardState({ term: 1, vote: 0, commit: 1 });
    storages.set(id, s);
  }
  const c = new TestCluster(ids, {}, 9, storages);
  c.tick([3], 50);
  assert.equal(c.get(3).node.status().state, StateType.Follower, 'learner never campaigns');
  c.elect(1);
  c.get(1).node.propose(enc('l'));
  c.deliver();
  assert.equal(dec(c.get(3).applied[c.get(3).applied.length - 1].data), 'l');
  c.isolate(2);
  const commit = c.get(1).node.status().commit;
  c.get(1).node.propose(enc('needs-2'));
  c.deliver();
  assert.equal(c.get(1).node.status().commit, commit, 'learner ack does not make a quorum');
});

test('applyConfChange adds a voter that then counts for quorum', () => {
  const c = new TestCluster([1, 2]);
  c.elect(1);
  const s3 = new MemoryStorage();
  const n3 = new RawNode({ id: 3, electionTick: 10, heartbeatTick: 1, storage: s3, rand: prng(3) });
  c.nodes.set(3, { id: 3, node: n3, storage: s3, applied: [], readStates: [] });
  for (const id of [1, 2]) c.get(id).node.applyConfChange({ type: 'addNode', nodeId: 3 });
  // etcd style: the new member is seeded by a snapshot whose ConfState includes it
  const l = c.get(1);
  const applied = l.node.status().applied;
  l.storage.createSnapshot(applied, { voters: [1, 2, 3], learners: [] }, enc('s'));
  l.storage.compact(applied);
  c.tick([1, 2, 3], 3);
  l.node.reportSnapshot(3, true);
  c.tick([1, 2, 3], 3);
  assert.equal(s3.snapshot().metadata.index, applied);
  assert.equal(c.get(1).node.status().progress?.get(3)?.match, c.get(1).node.status().lastIndex);
  c.isolate(2);
  c.get(1).node.propose(enc('with-3'));
  c.deliver();
  assert.equal(dec(c.get(3).applied[c.get(3).applied.length - 1].data), 'with-3');
  assert.equal(c.get(1).node.status().commit, c.get(1).node.status().lastIndex);
});

test('flow control: maxSizePerMsg splits MsgApp and the inflight window caps pipelining', () => {
  const c = new TestCluster([1, 2], { maxSizePerMsg: 100, maxInflightMsgs: 2 });
  c.elect(1);
  c.cut.add('2-1'); // no acks come back
  const l = c.get(1);
  const before = c.trace.length;
  for (let i = 0; i < 10; i++) l.node.propose(new Uint8Array(60).fill(i));
  c.deliver();
  const apps = c.trace.slice(before).filter((m) => m.type === MessageType.MsgApp && m.to === 2);
  for (const m of apps) assert.ok(m.entries.length <= 1, 'each 84-byte entry fills a 100-byte message');
  assert.ok(apps.length <= 2, `inflight window of 2 respected (sent ${apps.length})`);
  assert.equal(l.node.status().progress?.get(2)?.state, 'StateReplicate');
  c.heal();
  c.tick([1, 2], 5);
  assert.deepEqual(c.logOf(2), c.logOf(1));
});

test('confchange entries: only one pending at a time', () => {
  const c = new TestCluster([1]);
  c.elect(1);
  const l = c.get(1).node;
  l.proposeConfChange(enc('cc1'));
  l.proposeConfChange(enc('cc2'));
  const ents = l.raft.raftLog.allEntries();
  assert.equal(ents[ents.length - 2].type, EntryType.ConfChange);
  assert.equal(ents[ents.length - 1].type, EntryType.Normal, 'second conf change is replaced by a no-op');
});
