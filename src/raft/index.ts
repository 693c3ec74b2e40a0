/**
 * Public API of the pure Raft core (etcd-io/raft style). See docs/architecture.md and each module's docstrings.
 */
export {
  MessageType,
  EntryType,
  StateType,
  ErrProposalDropped,
  ErrCompacted,
  ErrUnavailable,
  ErrSnapOutOfDate,
  ErrSnapshotTemporarilyUnavailable,
  RaftInvariantError,
  NONE,
  makeMessage,
  entrySize,
} from './types';
export type {
  Entry,
  HardState,
  ConfState,
  SnapshotMetadata,
  Snapshot,
  Message,
  ReadState,
  SoftState,
  Ready,
  RaftConfig,
  Storage,
  RaftLogger,
} from './types';
export { MemoryStorage } from './storage';
export { RawNode, MAX_PROPOSAL_BATCH } from './rawnode';
export type { RaftStatus } from './rawnode';
export type { ConfChange } from './raft';
export { ProgressState } from './progress';
export { encodeMessages, decodeMessages, WireDecodeError, WireEncodeError } from './wire';
export { seededRandom } from './rand';
