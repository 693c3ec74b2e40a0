/**
 * Health and alarms of one member: the faults that stop writes (the WAL or the apply worker failed), the disk
 * reserve check, the NOSPACE alarm this member raises through Raft, and /health's answer (etcd: etcdhttp
 * checkHealth, etcdserver quotaAlarmer).
 */
import * as fs from 'node:fs';
import type { Logger } from '../log';
import type { ErrorName } from '../errors';
import { messageType } from '../wire/codec';
import { EntryKind, type Propose } from '../wire/entry';
import { ALARM_ACTION_ACTIVATE, ALARM_NOSPACE, alarmName } from '../wire/alarm';
import { WalErrorCode } from '../wal/protocol';
import type { WalFatalError } from '../wal/client';
import { ApplyFaultCode } from '../apply/apply-status';

const AlarmRequestType = messageType('etcdserverpb.AlarmRequest');

/** Free space always kept on the data dir's filesystem (bytes), on top of 4 × --max-request-bytes. */
export const MIN_DISK_RESERVE_BYTES = 1024 * 1024;
/** How often the free space is re-read (ms). */
export const DISK_CHECK_INTERVAL_MS = 250;

/** The faults after which nothing written could be acknowledged: writes fail, /health is false, reads go on. */
export class Faults {
  private walFatal: WalFatalError | null = null;
  private applyFatal: string | null = null;
  private applyFaultCode = ApplyFaultCode.None;

  /** True once the WAL or the apply worker failed. */
  get any(): boolean {
    return this.walFatal !== null || this.applyFatal !== null;
  }

  /** True once the apply worker failed (committed entries then stay in the WAL until a restart). */
  get applyFailed(): boolean {
    return this.applyFatal !== null;
  }

  /** Records a WAL failure; false when a WAL failure was recorded already. */
  walFailed(e: WalFatalError): boolean {
    if (this.walFatal !== null) return false;
    this.walFatal = e;
    return true;
  }

  /** Records an apply worker failure (its code from the status words); false when one was recorded already. */
  applyWorkerFailed(message: string, code: ApplyFaultCode): boolean {
    if (this.applyFatal !== null) return false;
    this.applyFatal = message;
    this.applyFaultCode = code;
    return true;
  }

  /** The error writes get: NoSpace for a full disk or a full LMDB map, Stopped for anything else. */
  writeError(): Extract<ErrorName, 'NoSpace' | 'Stopped'> {
    if (this.walFatal !== null) return this.walFatal.code === WalErrorCode.NoSpace ? 'NoSpace' : 'Stopped';
    return this.applyFatal !== null && this.applyFaultCode === ApplyFaultCode.NoSpace ? 'NoSpace' : 'Stopped';
  }

  /** The fault as /health words it, or null. */
  reason(): string | null {
    if (this.walFatal !== null) return `WAL: ${this.walFatal.message}`;
    if (this.applyFatal !== null) return `backend: ${this.applyFatal}`;
    return null;
  }
}

/**
 * True while the data dir's filesystem has less than `reserveBytes` free (statfs, re-read at most every
 * DISK_CHECK_INTERVAL_MS, sooner once enough was written to eat into the reserve). Writes that could grow the store
 * are refused before LMDB can hit ENOSPC in the middle of a commit: a full disk then means etcd's "database space
 * exceeded", not a failed backend.
 */
export class DiskReserve {
  private checkedAtMs = 0;
  private full = false;
  private bytesSinceCheck = 0;

  /** `dir`: the data dir; `reserveBytes`: free bytes the filesystem must keep. */
  constructor(private readonly dir: string, readonly reserveBytes: number) {}

  /** Counts `requestBytes` about to be written and answers whether the reserve is reached. */
  nearlyFull(requestBytes: number): boolean {
    const now = Date.now();
    this.bytesSinceCheck += requestBytes;
    if (now - this.checkedAtMs >= DISK_CHECK_INTERVAL_MS || this.bytesSinceCheck * 8 >= this.reserveBytes) {
      this.checkedAtMs = now;
      this.bytesSinceCheck = 0;
      try {
        const st = fs.statfsSync(this.dir);
        this.full = st.bavail * st.bsize < this.reserveBytes;
      } catch {
        this.full = false; // an unreadable statfs must not block writes; ENOSPC is still handled below us
      }
    }
    return this.full;
  }
}

/** What {@link NoSpaceAlarm} needs of the member. */
export interface NoSpaceAlarmOptions {
  localId: number;
  logger: Logger;
  /** Proposes through Raft (the member's admission applies). */
  propose: Propose;
  /** The alarms this member applied. */
  alarms(): { memberID: number; alarm: number }[];
  /** True when proposing makes sense (a leader is known and the member runs). */
  canPropose(): boolean;
  /** For the log line: quota and backend size in bytes. */
  quotaBytes: number;
  backendSize(): number;
}

/** Raises NOSPACE for this member through Raft, one proposal at a time (etcd: quotaAlarmer / applyEntryNormal). */
export class NoSpaceAlarm {
  private raising = false;

  constructor(private readonly o: NoSpaceAlarmOptions) {}

  /** Proposes ACTIVATE NOSPACE for this member unless it is raised already or being raised. */
  raise(): void {
    if (this.raising || !this.o.canPropose()) return;
    const me = this.o.localId;
    if (this.o.alarms().some((a) => a.alarm === ALARM_NOSPACE && a.memberID === me)) return;
    this.raising = true;
    this.o.logger.warn({ 'quota-size-bytes': this.o.quotaBytes, 'backend-size-bytes': this.o.backendSize() }, 'backend quota exceeded; raising NOSPACE alarm');
    const req = AlarmRequestType.encode({ action: ALARM_ACTION_ACTIVATE, memberID: me, alarm: ALARM_NOSPACE }).finish();
    this.o.propose(EntryKind.Alarm, req).then(
      () => { this.raising = false; },
      (e: unknown) => {
        this.raising = false;
        this.o.logger.warn({ error: (e as Error).message }, 'raising the NOSPACE alarm failed');
      },
    );
  }
}

/** Health as /health reports it (etcd: etcdhttp checkHealth: running, no fault, no alarm, a leader). */
export function healthOf(s: { stopped: boolean; faults: Faults; alarms: () => { alarm: number }[]; lead: number }): { health: boolean; reason: string } {
  if (s.stopped) return { health: false, reason: 'server stopped' };
  const fault = s.faults.reason();
  if (fault !== null) return { health: false, reason: fault };
  // etcd checkHealth: any raised alarm makes the member unhealthy (reason as etcd 3.5 words it).
  const alarm = s.alarms()[0];
  if (alarm !== undefined) return { health: false, reason: `ALARM ${alarmName(alarm.alarm)}` };
  if (s.lead === 0) return { health: false, reason: 'RAFT NO LEADER' };
  return { health: true, reason: '' };
}
