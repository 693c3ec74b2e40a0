import type { HardState } from '../raft';
import { MembershipError } from './membership';

/**
 * The HardState a restarting member hands to Raft, given what the WAL replayed and what the MVCC store applied.
 *
 * A HardState whose only change is the commit index is written behind the next fsync (RaftHost, etcd's
 * raft.MustSync), while the committed entries go to the apply worker at once. After a SIGKILL the MVCC store can
 * therefore hold an applied index past the last commit index the WAL recorded. Entries reach the apply worker only
 * from Ready.committedEntries, so every applied entry is committed: the commit index is raised to the applied
 * index (the commit index is volatile state, Raft thesis §3.8; etcd-io/raft panics if applied > commit).
 *
 * Shapes: `hardState` {term, vote, commit (index)}, `appliedIndex` and `lastIndex` are Raft log indexes.
 * Returns a new HardState (never mutates the argument).
 * Throws MembershipError when `appliedIndex > lastIndex`: entries are applied only once durable in the WAL, so the
 * WAL lost durable records (a damaged disk or a hand-edited data dir); starting would re-use their indexes.
 */
export function recoverHardState(hardState: HardState, appliedIndex: number, lastIndex: number): HardState {
  if (appliedIndex > lastIndex) {
    throw new MembershipError(
      `the MVCC store has applied index ${appliedIndex} but the WAL ends at ${lastIndex}: ` +
        'the WAL lost records that were applied; refusing to start (restore the member from a snapshot or re-add it)',
    );
  }
  if (appliedIndex <= hardState.commit) return { ...hardState };
  return { ...hardState, commit: appliedIndex };
}
