/**
 * etcd's alarm values as they travel in AlarmRequest / AlarmMember (etcd api: etcdserverpb.AlarmType and
 * AlarmRequest.AlarmAction). Shared by the client API (Maintenance.Alarm), the apply worker (which persists the
 * alarm set) and the server (which raises NOSPACE and reports alarms in /health).
 */

/** etcdserverpb.AlarmType NONE: matches every alarm type in a GET or DEACTIVATE. */
export const ALARM_NONE = 0;
/** etcdserverpb.AlarmType NOSPACE: the backend reached its quota; writes that add data are refused. */
export const ALARM_NOSPACE = 1;
/** etcdserverpb.AlarmType CORRUPT: a member's data diverged from the others'. */
export const ALARM_CORRUPT = 2;

/** etcdserverpb.AlarmRequest.AlarmAction GET. */
export const ALARM_ACTION_GET = 0;
/** etcdserverpb.AlarmRequest.AlarmAction ACTIVATE. */
export const ALARM_ACTION_ACTIVATE = 1;
/** etcdserverpb.AlarmRequest.AlarmAction DEACTIVATE. */
export const ALARM_ACTION_DEACTIVATE = 2;

/** The name etcd prints for an alarm type (etcd /health: "ALARM NOSPACE"); UNKNOWN for anything else. */
export function alarmName(alarm: number): 'NONE' | 'NOSPACE' | 'CORRUPT' | 'UNKNOWN' {
  return alarm === ALARM_NOSPACE ? 'NOSPACE' : alarm === ALARM_CORRUPT ? 'CORRUPT' : alarm === ALARM_NONE ? 'NONE' : 'UNKNOWN';
}
