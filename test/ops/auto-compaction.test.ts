/**
 * Auto-compaction against real processes, etcd 3.4 beside etcetera: `--auto-compaction-mode periodic` with a 2 s
 * retention given as ETCD_* variables, a steady writer, then the compact revision (HashKV's compact_revision) must
 * have moved forward on both while the last retention of history stays readable, and both log etcd's zap lines.
 * In a 3-member etcetera cluster only the leader compacts. (Revision mode looks every 5 minutes in etcd, too slow
 * for a test: test/server/compactor.test.ts covers it on an injected clock.)
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RawClient, hasEtcd, NO_ETCD, startEtcd, startEtcetera, type ServerHandle } from '../helpers';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ENV = { ETCD_AUTO_COMPACTION_MODE: 'periodic', ETCD_AUTO_COMPACTION_RETENTION: '2s' };

/** Writes one key every 100 ms for `ms`; returns [time, revision] of each acknowledged put. */
async function writeFor(c: RawClient, ms: number): Promise<[number, number][]> {
  const acks: [number, number][] = [];
  const end = Date.now() + ms;
  let i = 0;
  while (Date.now() < end) {
    try {
      const r = await c.put({ key: Buffer.from(`k${i % 5}`), value: Buffer.from(String(i)) });
      acks.push([Date.now(), Number(r.header.revision)]);
    } catch { /* a busy machine: the next put retries */ }
    i++;
    await sleep(100);
  }
  return acks;
}

async function runOne(h: ServerHandle): Promise<{ compactRev: number; acks: [number, number][]; log: string }> {
  const c = new RawClient(h.clientUrl);
  try {
    const acks = await writeFor(c, 9000);
    const hk = await c.call('Maintenance', 'HashKV', { revision: 0 });
    return { compactRev: Number(hk.compactRevision), acks, log: h.output() };
  } finally {
    c.close();
  }
}

function check(kind: string, r: { compactRev: number; acks: [number, number][]; log: string }): void {
  const now = r.acks[r.acks.length - 1]![0];
  // Something written more than ~5 s ago (retention + compaction interval + sample lag + slack) is compacted...
  const old = r.acks.filter(([t]) => t < now - 5000);
  assert.ok(old.length > 0, `${kind}: writer too slow`);
  assert.ok(r.compactRev >= old[0]![1], `${kind}: compact revision ${r.compactRev} should pass ${old[0]![1]}`);
  // ...and nothing written in the last retention is.
  const recent = r.acks.filter(([t]) => t >= now - 2000);
  assert.ok(r.compactRev < recent[0]![1], `${kind}: compact revision ${r.compactRev} must keep the last 2 s (from ${recent[0]![1]})`);
  const lines = r.log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const starts = lines.filter((l) => l.msg === 'starting auto periodic compaction');
  const dones = lines.filter((l) => l.msg === 'completed auto periodic compaction');
  assert.ok(starts.length >= 2 && dones.length >= 2, `${kind}: compaction log lines`);
  for (const l of [...starts, ...dones]) {
    assert.equal(typeof l.revision, 'number', kind);
    assert.equal(l['compact-period'], '2s', kind);
  }
  for (const l of dones) assert.equal(typeof l.took, 'string', kind);
}

test('periodic auto-compaction (2 s retention from ETCD_* env): etcd 3.4 and etcetera compact alike', { skip: hasEtcd() ? undefined : NO_ETCD, timeout: 120_000 }, async () => {
  const etcd = await startEtcd({ env: ENV, extraArgs: ['--log-level=info'] });
  const ours = await startEtcetera({ env: ENV });
  try {
    const [a, b] = await Promise.all([runOne(etcd), runOne(ours)]);
    check('etcd', a);
    check('etcetera', b);
  } finally {
    await Promise.all([etcd.stop(), ours.stop()]);
  }
});

test('only the leader of a 3-member cluster compacts', { timeout: 180_000 }, async () => {
  const h = await startEtcetera({ members: 3, extraArgs: ['--auto-compaction-retention=2s'] });
  try {
    const r = await runOne(h);
    const members = h.members!;
    const c = new RawClient(h.clientUrl);
    const st = await c.status();
    c.close();
    const leaderId = String(st.leader);
    let leaders = 0;
    for (const m of members) {
      const mc = new RawClient(m.clientUrl);
      const s = await mc.status();
      mc.close();
      const out = m.output();
      const compacted = out.includes('"msg":"starting auto periodic compaction"');
      if (String(s.header.memberId) === leaderId) {
        leaders++;
        assert.ok(compacted, `leader ${m.name} compacts`);
      }
    }
    assert.equal(leaders, 1);
    // Followers may have led earlier (an election at start), so count the lines only since the last role change.
    for (const m of members) {
      const out = m.output();
      const lastRole = out.lastIndexOf('"msg":"raft role changed"');
      const sinceRole = out.slice(lastRole);
      if (/"role":"Follower"/.test(sinceRole.slice(0, 300))) assert.ok(!sinceRole.includes('starting auto periodic compaction'), `follower ${m.name} compacted`);
    }
    assert.ok(r.compactRev > 1, 'the cluster compacted');
  } finally {
    await h.stop();
  }
});
