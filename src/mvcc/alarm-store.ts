/**
 * The alarm store (etcd etcdserver/api/v3alarm AlarmStore): raised alarms, in the order they were raised, persisted
 * in the `meta` db under ALARMS_KEY in the same transaction as the entry that changed them.
 */
import type { MvccDbs } from './env';

/** Key of the alarm list in the `meta` db (etcd: the `alarm` bucket). */
export const ALARMS_KEY = 'alarms';

/** A raised alarm (etcd api: etcdserverpb.AlarmMember; alarm: 1 NOSPACE, 2 CORRUPT). */
export interface AlarmMember { memberID: number; alarm: number }

type AlarmDb = { get(k: string): AlarmMember[] | undefined; putSync(k: string, v: AlarmMember[]): void };

/** The raised alarms (copies). */
export function readAlarms(dbs: Pick<MvccDbs, 'meta'>): AlarmMember[] {
  return ((dbs.meta as unknown as AlarmDb).get(ALARMS_KEY) ?? []).map((m) => ({ ...m }));
}

/**
 * Raises `alarm` for `memberID` (etcd AlarmStore.Activate); `write` runs the store update in the caller's write
 * transaction. @returns the stored member and whether it is new.
 */
export function activateAlarm(dbs: Pick<MvccDbs, 'meta'>, write: (fn: () => void) => void, memberID: number, alarm: number): { member: AlarmMember; added: boolean } {
  const list = readAlarms(dbs);
  const old = list.find((m) => m.memberID === memberID && m.alarm === alarm);
  if (old) return { member: old, added: false };
  const member = { memberID, alarm };
  list.push(member);
  write(() => (dbs.meta as unknown as AlarmDb).putSync(ALARMS_KEY, list));
  return { member, added: true };
}

/** Clears `alarm` of `memberID` (etcd AlarmStore.Deactivate). @returns the removed member, or null. */
export function deactivateAlarm(dbs: Pick<MvccDbs, 'meta'>, write: (fn: () => void) => void, memberID: number, alarm: number): AlarmMember | null {
  const list = readAlarms(dbs);
  const i = list.findIndex((m) => m.memberID === memberID && m.alarm === alarm);
  if (i < 0) return null;
  const [m] = list.splice(i, 1);
  write(() => (dbs.meta as unknown as AlarmDb).putSync(ALARMS_KEY, list));
  return m!;
}
