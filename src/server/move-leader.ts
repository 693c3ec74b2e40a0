/**
 * Leadership transfer on request (etcd api: Maintenance.MoveLeader; Raft thesis §3.10).
 *
 * `moveLeader(host, targetId, waitMs)`: `targetId` is a member ID (positive integer below 2^53; whatever the
 * client sent as the uint64 MoveLeaderRequest.targetID), `waitMs` the longest wait in milliseconds (the caller
 * passes the smaller of the client's remaining deadline and etcd's request timeout). Resolves with nothing once
 * this member observes `targetId` as the Raft leader. Rejects with an EtcdError, checked in etcd 3.4's order:
 *   - NotLeader (FailedPrecondition) when this member is not the leader it knows of (no leader counts too);
 *   - BadLeaderTransferee (FailedPrecondition) when `targetId` is not a member or is a learner;
 *   - TimeoutLeaderTransfer (Unknown) when `waitMs` passes first.
 * A target that already leads succeeds at once. The Raft core itself gives up on a transfer after an election
 * timeout (the target did not catch up or did not win); the wait here keeps going until `waitMs` regardless, as
 * etcd does, because a later ordinary election can still hand the leadership to the target.
 */
import type { MemberEventSource } from '../member-events';
import { etcdError } from '../errors';

/** setTimeout's largest delay; anything above it (Infinity included) would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a transfer needs of the server. */
export interface MoveLeaderHost {
  /** This member's ID. */
  readonly localId: number;
  /** The leader this member currently knows of (0: none). */
  lead(): number;
  /** Current members; only voters may become leader. */
  members(): readonly { id: number; isLearner: boolean }[];
  /** Asks the Raft core to hand leadership to `to` (Raft: MsgTransferLeader). */
  transferLeader(to: number): void;
  /** Emits 'leader' (lead: number, ...) whenever the known leader or this member's role changes. */
  readonly events: MemberEventSource;
}

/** Starts a leadership transfer to `targetId` and waits until this member sees it lead. See the module docs. */
export function moveLeader(host: MoveLeaderHost, targetId: number, waitMs: number): Promise<void> {
  const lead = host.lead();
  if (lead !== host.localId) return Promise.reject(etcdError('NotLeader'));
  const target = host.members().find((m) => m.id === targetId);
  if (target === undefined || target.isLearner) return Promise.reject(etcdError('BadLeaderTransferee'));
  if (targetId === lead) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onLeader = (newLead: number): void => {
      if (newLead !== targetId) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(etcdError('TimeoutLeaderTransfer'));
    }, Math.min(Math.max(0, waitMs), MAX_TIMER_MS));
    // A pending MoveLeader must not keep a stopping process alive.
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      host.events.off('leader', onLeader);
    };
    host.events.on('leader', onLeader);
    host.transferLeader(targetId);
  });
}
