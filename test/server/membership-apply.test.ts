/** Membership apply on the main thread (src/server/membership-apply.ts) with real memberships on a temp dir. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MembershipApply } from '../../src/server/membership-apply';
import { loadMembership, type Membership } from '../../src/server/membership';
import { twoMemberMembership } from './two-members';
import { encodeConfChange } from '../../src/server/conf-change';
import { encodeMembershipWire } from '../../src/server/join';
import { EntryType, type ConfChange, type Entry } from '../../src/raft';
import { EntryKind, encodeEntryData } from '../../src/wire/entry';
import { Errors } from '../../src/errors';
import { createLogger } from '../../src/log';

function setup() {
  const memberDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-mapply-'));
  const membership = twoMemberMembership();
  const settled: [number, number][] = [];
  const confChanges: ConfChange[] = [];
  const changes: Membership[] = [];
  let removed = 0;
  const apply = new MembershipApply({
    membership,
    memberDir,
    localName: 'a',
    advertiseClientUrls: ['http://127.0.0.1:11'],
    logger: createLogger('error'),
    settle: (id, err) => settled.push([id, err]),
    applyConfChange: (cc) => confChanges.push(cc),
    onChange: (m) => changes.push(m),
    onRemovedSelf: () => removed++,
  });
  const cleanup = () => fs.rmSync(memberDir, { recursive: true, force: true });
  return { memberDir, membership, settled, confChanges, changes, apply, removed: () => removed, cleanup };
}

const entry = (index: number, type: EntryType, data: Uint8Array): Entry => ({ index, term: 2, type, data });

test('normal entries pass through untouched (same array); membership entries become empty entries', () => {
  const s = setup();
  try {
    const plain = [entry(5, EntryType.Normal, encodeEntryData(EntryKind.Put, 1, new Uint8Array([1])))];
    assert.equal(s.apply.takeOut(plain), plain);
    const attrs = encodeEntryData(EntryKind.MemberAttributes, 9, Buffer.from(JSON.stringify({ id: s.membership.members[1]!.id, name: 'b', clientUrls: ['http://127.0.0.1:22'] })));
    const mixed = [plain[0]!, entry(6, EntryType.Normal, attrs)];
    const out = s.apply.takeOut(mixed);
    assert.notEqual(out, mixed);
    assert.equal(out[0], mixed[0]);
    assert.equal(out[1]!.data.length, 0);
    assert.equal(out[1]!.index, 6);
    assert.deepEqual(s.settled, [[9, 0]]);
    assert.deepEqual(s.membership.members[1]!.clientUrls, ['http://127.0.0.1:22']);
    assert.deepEqual(loadMembership(s.memberDir)?.members[1]?.clientUrls, ['http://127.0.0.1:22'], 'persisted');
  } finally {
    s.cleanup();
  }
});

test('a ConfChange adds a member, reconfigures Raft, persists, announces; a replay at or below confIndex is skipped', () => {
  const s = setup();
  try {
    const add = encodeConfChange({ requestId: 3, body: { op: 'add', member: { id: 77, name: '', peerUrls: ['http://127.0.0.1:3'], clientUrls: [], isLearner: true } } });
    const out = s.apply.takeOut([entry(10, EntryType.ConfChange, add)]);
    assert.equal(out[0]!.type, EntryType.Normal);
    assert.equal(out[0]!.data.length, 0);
    assert.equal(s.confChanges.length, 1);
    assert.deepEqual(s.settled, [[3, 0]]);
    assert.equal(s.changes.length, 1);
    assert.equal(s.membership.confIndex, 10);
    assert.ok(loadMembership(s.memberDir)?.members.some((m) => m.id === 77 && m.isLearner));
    s.apply.takeOut([entry(10, EntryType.ConfChange, add)]);
    assert.equal(s.confChanges.length, 1, 'replayed entry not applied twice');
    assert.deepEqual(s.settled, [[3, 0], [3, 0]]);
  } finally {
    s.cleanup();
  }
});

test('an invalid ConfChange is refused with etcd\'s error and changes nothing', () => {
  const s = setup();
  try {
    const before = JSON.stringify(s.membership);
    s.apply.takeOut([entry(4, EntryType.ConfChange, encodeConfChange({ requestId: 8, body: { op: 'remove', id: 12345 } }))]);
    assert.deepEqual(s.settled, [[8, Errors.MemberNotFound.id]]);
    assert.equal(s.confChanges.length, 0);
    assert.equal(JSON.stringify(s.membership), before);
  } finally {
    s.cleanup();
  }
});

test('removing this member tells the server; a newer membership from a snapshot is adopted, an older one is not', () => {
  const s = setup();
  try {
    s.apply.takeOut([entry(4, EntryType.ConfChange, encodeConfChange({ requestId: 1, body: { op: 'remove', id: s.membership.localId } }))]);
    assert.equal(s.removed(), 1);
    const t = setup();
    const newer: Membership = { ...t.membership, members: t.membership.members.map((m) => ({ ...m, name: 'renamed' })), confIndex: 50 };
    t.apply.adopt(encodeMembershipWire(newer));
    assert.equal(t.membership.confIndex, 50);
    assert.equal(t.membership.members.find((m) => m.id === t.membership.localId)?.name, 'a', 'our own name and URLs are ours');
    assert.equal(t.membership.members.find((m) => m.id !== t.membership.localId)?.name, 'renamed');
    t.apply.adopt(encodeMembershipWire({ ...newer, confIndex: 49 }));
    assert.equal(t.membership.confIndex, 50);
    assert.equal(t.changes.length, 1);
    t.cleanup();
  } finally {
    s.cleanup();
  }
});

test('markRemoved records this member as removed once and persists it', () => {
  const s = setup();
  try {
    s.apply.markRemoved();
    s.apply.markRemoved();
    assert.deepEqual(s.membership.removed, [s.membership.localId]);
    assert.ok(!s.membership.members.some((m) => m.id === s.membership.localId));
    assert.deepEqual(loadMembership(s.memberDir)?.removed, [s.membership.localId]);
  } finally {
    s.cleanup();
  }
});
