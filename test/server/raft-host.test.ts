/**
 * RaftHost (src/server/raft-host.ts) on a real one-voter Raft core, with a WAL sink that reports durability on the
 * next turn and a scripted apply sink: the named bounds of its three queues (MAX_QUEUED_PROPOSALS,
 * MAX_QUEUED_CONF_CHANGES, MAX_QUEUED_READS) and what happens at each, and a full apply sink pausing the hand-over
 * of committed entries (Raft keeps them, nothing fails) until the sink has room again (issue 8, flow control).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RaftHost, MAX_QUEUED_PROPOSALS, MAX_QUEUED_CONF_CHANGES, MAX_QUEUED_READS, type ApplySink } from '../../src/server/raft-host';
import { MemoryStorage, StateType, type Entry, type ReadState } from '../../src/raft';

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
