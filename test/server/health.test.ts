/** Health and alarms (src/server/health.ts): faults, /health's reasons, the disk reserve, the NOSPACE alarm. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import { DiskReserve, Faults, NoSpaceAlarm, healthOf } from '../../src/server/health';
import { WalFatalError } from '../../src/wal/client';
import { WalErrorCode } from '../../src/wal/protocol';
import { ApplyFaultCode, applyFaultCodeOf } from '../../src/apply/apply-status';
import { EntryKind } from '../../src/wire/entry';
import { messageType } from '../../src/wire/codec';
import { ALARM_ACTION_ACTIVATE, ALARM_CORRUPT, ALARM_NOSPACE } from '../../src/wire/alarm';
import { createLogger } from '../../src/log';

test('faults: the first WAL or apply failure sticks; writes get NoSpace for a full disk or map, Stopped otherwise', () => {
  const f = new Faults();
  assert.equal(f.any, false);
  assert.equal(f.reason(), null);
  assert.equal(f.applyWorkerFailed('MDB_MAP_FULL: mapsize reached', ApplyFaultCode.NoSpace), true);
  assert.equal(f.applyWorkerFailed('other', ApplyFaultCode.Internal), false);
  assert.equal(f.any && f.applyFailed, true);
  assert.equal(f.writeError(), 'NoSpace');
  assert.equal(f.reason(), 'backend: MDB_MAP_FULL: mapsize reached');
  const g = new Faults();
  g.applyWorkerFailed('worker exited with code 1', ApplyFaultCode.Internal);
  assert.equal(g.writeError(), 'Stopped');
  const w = new Faults();
  assert.equal(w.walFailed(new WalFatalError(WalErrorCode.NoSpace, 'ENOSPC', 'ENOSPC: no space left')), true);
  assert.equal(w.writeError(), 'NoSpace');
  assert.match(String(w.reason()), /^WAL: /);
});

test('apply faults are classified where they happen; the code, not the message, decides the write error', () => {
  const errno = (code: string): Error => Object.assign(new Error(`${code}: something`), { code });
  assert.equal(applyFaultCodeOf(errno('ENOSPC')), ApplyFaultCode.NoSpace);
  assert.equal(applyFaultCodeOf(errno('EDQUOT')), ApplyFaultCode.NoSpace);
  assert.equal(applyFaultCodeOf(new Error('MDB_MAP_FULL: Environment mapsize limit reached')), ApplyFaultCode.NoSpace);
  assert.equal(applyFaultCodeOf(errno('EIO')), ApplyFaultCode.Io);
  assert.equal(applyFaultCodeOf(Object.assign(new Error('ring record length 7 is impossible'), { name: 'RingCorruptError' })), ApplyFaultCode.BadRecord);
  assert.equal(applyFaultCodeOf(new TypeError('x is undefined')), ApplyFaultCode.Internal);
  assert.equal(applyFaultCodeOf(undefined), ApplyFaultCode.Internal);
  // A message that merely mentions a full disk does not make a NoSpace fault: only the code does.
  const f = new Faults();
  f.applyWorkerFailed('ENOSPC mentioned in a bug report', ApplyFaultCode.Internal);
  assert.equal(f.writeError(), 'Stopped');
  const g = new Faults();
  g.applyWorkerFailed('disk trouble', ApplyFaultCode.NoSpace);
  assert.equal(g.writeError(), 'NoSpace');
});

test('health: stopped, then faults, then alarms, then no leader; otherwise healthy', () => {
  const faults = new Faults();
  const noAlarms = () => [];
  assert.deepEqual(healthOf({ stopped: true, faults, alarms: () => { throw new Error('not read once stopped'); }, lead: 1 }), { health: false, reason: 'server stopped' });
  assert.deepEqual(healthOf({ stopped: false, faults, alarms: () => [{ alarm: ALARM_NOSPACE }], lead: 1 }), { health: false, reason: 'ALARM NOSPACE' });
  assert.deepEqual(healthOf({ stopped: false, faults, alarms: () => [{ alarm: ALARM_CORRUPT }], lead: 1 }), { health: false, reason: 'ALARM CORRUPT' });
  assert.deepEqual(healthOf({ stopped: false, faults, alarms: noAlarms, lead: 0 }), { health: false, reason: 'RAFT NO LEADER' });
  assert.deepEqual(healthOf({ stopped: false, faults, alarms: noAlarms, lead: 7 }), { health: true, reason: '' });
  faults.applyWorkerFailed('boom', ApplyFaultCode.Internal);
  assert.deepEqual(healthOf({ stopped: false, faults, alarms: noAlarms, lead: 7 }), { health: false, reason: 'backend: boom' });
});

test('disk reserve: a reserve larger than any disk reads as full; a zero reserve never does', () => {
  assert.equal(new DiskReserve(os.tmpdir(), Number.MAX_SAFE_INTEGER).nearlyFull(1), true);
  assert.equal(new DiskReserve(os.tmpdir(), 0).nearlyFull(1), false);
  assert.equal(new DiskReserve('/no/such/dir/etcetera', Number.MAX_SAFE_INTEGER).nearlyFull(1), false, 'unreadable statfs does not block writes');
});

test('NOSPACE alarm: proposed once at a time as ACTIVATE NOSPACE for this member; not when raised or no leader', async () => {
  const AlarmRequest = messageType('etcdserverpb.AlarmRequest');
  const proposed: { kind: EntryKind; req: { action: number; memberID: number; alarm: number } }[] = [];
  let release: () => void = () => {};
  let alarms: { memberID: number; alarm: number }[] = [];
  let leader = true;
  const alarm = new NoSpaceAlarm({
    localId: 42,
    logger: createLogger('error'),
    propose: (kind, bytes) => {
      proposed.push({ kind, req: AlarmRequest.decode(bytes) as never });
      return new Promise((r) => { release = () => r(new Uint8Array(0)); });
    },
    alarms: () => alarms,
    canPropose: () => leader,
    quotaBytes: 100,
    backendSize: () => 200,
  });
  alarm.raise();
  alarm.raise();
  assert.equal(proposed.length, 1, 'one proposal in flight at a time');
  assert.equal(proposed[0]?.kind, EntryKind.Alarm);
  assert.deepEqual({ ...proposed[0]?.req }, { action: ALARM_ACTION_ACTIVATE, memberID: 42, alarm: ALARM_NOSPACE });
  release();
  await new Promise((r) => setImmediate(r));
  alarms = [{ memberID: 42, alarm: ALARM_NOSPACE }];
  alarm.raise();
  assert.equal(proposed.length, 1, 'already raised for this member');
  alarms = [];
  leader = false;
  alarm.raise();
  assert.equal(proposed.length, 1, 'no leader: nothing proposed');
  leader = true;
  alarm.raise();
  assert.equal(proposed.length, 2);
});
