/**
 * RaftHost (src/server/raft-host.ts) on a real one-voter Raft core, with a WAL sink that reports durability on the
 * next turn and a scripted apply sink: the named bounds of its three queues (MAX_QUEUED_PROPOSALS,
 * MAX_QUEUED_CONF_CHANGES, MAX_QUEUED_READS) and what happens at each, and a full apply sink pausing the hand-over
 * of committed entries (Raft keeps them, nothing fails) until the sink has room again (issue 8, flow control).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RaftHost, MAX_QUEUED_PROPOSALS, MAX_QUEUED_CONF_CHANGES, MAX_QUEUED_READS, type ApplySink } from '../../src/server/raft-host';
import { MemoryStorage, MessageType, StateType, type Entry, type Message, type ReadState } from '../../src/raft';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await turn();
  }
}

function setup() {
  const applied: Entry[] = [];
  const readStates: ReadState[] = [];
  const dropped: Uint8Array[] = [];
  let leader = false;
  const room = { has: true, waiters: [] as (() => void)[] };
  const sink: ApplySink = {
    apply: (entries) => void applied.push(...entries),
    hasRoom: () => room.has,
    whenRoom: () => new Promise<void>((r) => room.waiters.push(r)),
  };
  let host!: RaftHost;
  host = RaftHost.boot(
    {
      id: 1,
      storage: new MemoryStorage(),
      confState: { voters: [1], learners: [] },
      replay: { entries: [] },
      joined: false,
      applied: 0,
      electionTick: 10,
      seed: 1,
      logger: () => {},
    },
    // The WAL worker's fsync, as the host sees it: durable on a later turn.
    { append: () => void setImmediate(() => host.persisted()), appendLazy: () => {} },
    sink,
    {
      onLeaderChange: (_lead, state) => void (leader = state === StateType.Leader),
      onReadStates: (s) => void readStates.push(...s),
      send: () => {},
    },
    (datas) => void dropped.push(...datas),
  );
  const setRoom = (has: boolean): void => {
    room.has = has;
    if (has) for (const w of room.waiters.splice(0)) w();
  };
  return { host, applied, readStates, dropped, isLeader: () => leader, setRoom };
}

async function leaderOf(s: ReturnType<typeof setup>): Promise<void> {
  s.host.campaign();
  await until(s.isLeader, 'leadership');
  await until(() => s.host.commitIndex() >= 1 && s.applied.length >= 1, 'the leader\'s first entry applied');
}

const data = (n: number): Uint8Array => Uint8Array.of(1, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff);

test('proposals: MAX_QUEUED_PROPOSALS in one turn are queued, the next is refused (false); all queued ones commit', async () => {
  const s = setup();
  await leaderOf(s);
  const base = s.applied.length;
  for (let i = 0; i < MAX_QUEUED_PROPOSALS; i++) assert.equal(s.host.propose(data(i)), true);
  assert.equal(s.host.propose(data(-1)), false, 'past the bound: refused, the server answers "too many requests"');
  await until(() => s.applied.length >= base + MAX_QUEUED_PROPOSALS, 'every queued proposal applied');
  assert.equal(s.applied.length, base + MAX_QUEUED_PROPOSALS, 'exactly the queued ones, not the refused one');
  assert.deepEqual(s.dropped, []);
  assert.equal(s.host.propose(data(1)), true, 'the queue is empty again after the run');
});

test('ConfChanges: past MAX_QUEUED_CONF_CHANGES in one turn the next one is dropped at once (its onDropped runs)', async () => {
  const s = setup();
  let droppedNow = 0;
  for (let i = 0; i < MAX_QUEUED_CONF_CHANGES; i++) s.host.proposeConfChange(new Uint8Array(0), () => {});
  s.host.proposeConfChange(new Uint8Array(0), () => droppedNow++);
  assert.equal(droppedNow, 1);
});

test('ReadIndex: past MAX_QUEUED_READS in one turn further contexts are not queued; the queued ones are answered', async () => {
  const s = setup();
  await leaderOf(s);
  for (let i = 0; i < MAX_QUEUED_READS + 10; i++) s.host.readIndex(Buffer.from(`ctx-${i}`));
  await until(() => s.readStates.length >= MAX_QUEUED_READS, 'the queued reads answered');
  await turn();
  await turn();
  assert.equal(s.readStates.length, MAX_QUEUED_READS, 'the contexts past the bound were not queued (ReadIndex.retry asks again)');
  const ctxs = new Set(s.readStates.map((r) => Buffer.from(r.requestCtx).toString()));
  assert.ok(ctxs.has('ctx-0') && ctxs.has(`ctx-${MAX_QUEUED_READS - 1}`) && !ctxs.has(`ctx-${MAX_QUEUED_READS}`));
});

test('a full apply sink pauses the hand-over: entries still commit, none is lost or refused, all follow in order once there is room', async () => {
  const s = setup();
  await leaderOf(s);
  s.setRoom(false);
  const base = s.applied.length;
  const commitBefore = s.host.commitIndex();
  for (let i = 0; i < 50; i++) assert.equal(s.host.propose(data(i)), true);
  await until(() => s.host.commitIndex() >= commitBefore + 50, 'the proposals committed while apply is paused');
  for (let i = 0; i < 5; i++) await turn();
  assert.equal(s.host.isApplyPaused(), true);
  assert.equal(s.applied.length, base, 'nothing handed over while the sink is full');
  s.setRoom(true);
  await until(() => s.applied.length >= base + 50, 'the held entries handed over');
  assert.equal(s.host.isApplyPaused(), false);
  const idx = s.applied.map((e) => e.index);
  for (let i = 1; i < idx.length; i++) assert.equal(idx[i], (idx[i - 1] as number) + 1, 'consecutive indexes, in order');
  assert.deepEqual(s.dropped, []);
});

/**
 * A host whose WAL sink numbers its appends (durable a turn later) and whose apply sink takes early hand-offs
 * (ApplySink.applyWhenDurable), with `voters`; peer 2, if a voter, grants votes and acknowledges appends.
 */
function setupEarly(voters: number[]) {
  const applied: Entry[] = [];
  const early: { first: number; last: number; seq: number; durableAtOffer: number; commitAtOffer: number; handedBefore: number }[] = [];
  let handed = 0;
  let leader = false;
  let seq = 0;
  let durable = 0;
  const sink: ApplySink = {
    apply: (entries) => {
      applied.push(...entries);
      if (entries.length > 0) handed = Math.max(handed, entries[entries.length - 1]!.index);
    },
    hasRoom: () => true,
    whenRoom: () => Promise.resolve(),
    applyWhenDurable: (entries, s) => {
      early.push({
        first: entries[0]!.index, last: entries[entries.length - 1]!.index, seq: s, durableAtOffer: durable,
        commitAtOffer: host.commitIndex(), handedBefore: handed,
      });
      handed = entries[entries.length - 1]!.index;
      return true;
    },
  };
  let host!: RaftHost;
  const reply = (m: Message): void => {
    const base = { to: 1, from: 2, term: m.term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
    if (m.type === MessageType.MsgPreVote) host.step({ ...base, type: MessageType.MsgPreVoteResp });
    else if (m.type === MessageType.MsgVote) host.step({ ...base, type: MessageType.MsgVoteResp });
    else if (m.type === MessageType.MsgApp) host.step({ ...base, type: MessageType.MsgAppResp, index: m.index + m.entries.length });
    else if (m.type === MessageType.MsgHeartbeat) host.step({ ...base, type: MessageType.MsgHeartbeatResp, context: m.context });
  };
  host = RaftHost.boot(
    {
      id: 1, storage: new MemoryStorage(), confState: { voters, learners: [] }, replay: { entries: [] }, joined: false,
      applied: 0, electionTick: 10, seed: 1, logger: () => {},
    },
    {
      append: () => {
        const s = ++seq;
        setImmediate(() => {
          durable = s;
          host.persisted();
        });
        return s;
      },
      appendLazy: () => {},
    },
    sink,
    {
      onLeaderChange: (_lead, state) => void (leader = state === StateType.Leader),
      onReadStates: () => {},
      send: (msgs) => {
        for (const m of msgs) if (m.to === 2 && voters.includes(2)) setImmediate(() => reply(m));
      },
    },
    () => {},
  );
  return { host, applied, early, isLeader: () => leader };
}

test('direct hand-off: a one-voter leader offers its entries before they are durable, in order after what it handed; each comes again once committed', async () => {
  const s = setupEarly([1]);
  s.host.campaign();
  await until(s.isLeader, 'leadership');
  await until(() => s.host.commitIndex() >= 1 && s.applied.length >= 1, "the leader's first entry applied");
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 1 + (round % 4); i++) assert.equal(s.host.propose(data(round * 10 + i)), true);
    await turn();
  }
  assert.ok(s.early.length > 0, 'some batches were handed early');
  const lastEarly = Math.max(...s.early.map((o) => o.last));
  await until(() => s.applied.length > 0 && s.applied[s.applied.length - 1]!.index >= lastEarly, 'the early batches committed and handed again');
  for (const o of s.early) {
    assert.ok(o.seq > o.durableAtOffer, `batch ${o.first}..${o.last} offered before its append (seq ${o.seq}) was durable (${o.durableAtOffer})`);
    assert.ok(o.commitAtOffer < o.first, `batch ${o.first}..${o.last} offered before the core committed it (commit ${o.commitAtOffer})`);
    assert.equal(o.first, o.handedBefore + 1, 'offered right after the last entry handed on: the apply order is the log order');
  }
  // Every entry also comes through apply once committed (the state machine skips the ones it took early), in order.
  const idx = s.applied.map((e) => e.index);
  for (let i = 1; i < idx.length; i++) assert.equal(idx[i], (idx[i - 1] as number) + 1, 'consecutive indexes, in order');
  for (const o of s.early) assert.ok(idx.includes(o.last), `entry ${o.last} handed again once committed`);
});

test('direct hand-off: never offered when another voter must acknowledge (a two-voter leader)', async () => {
  const s = setupEarly([1, 2]);
  s.host.campaign();
  await until(s.isLeader, 'leadership with the vote of member 2');
  for (let round = 0; round < 10; round++) {
    assert.equal(s.host.propose(data(round)), true);
    await turn();
  }
  await until(() => s.applied.length >= 11, 'the proposals committed through member 2');
  assert.deepEqual(s.early, [], 'nothing handed before the quorum acknowledged it');
});
