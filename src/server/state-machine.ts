/**
 * The server's view of the MVCC state machine: committed entries go to the apply worker (one ring record per
 * Ready), results come back per request, and reads are served on the main thread straight from LMDB
 * (etcd: etcdserver/apply.go + mvcc). Counters the worker publishes (applied index, revision, db size) are read
 * from shared memory, without a thread hop.
 */
import type { Logger } from '../log';
import type { Entry } from '../raft';
import type { RangeRequest } from '../api/proto/codec';
import { ApplyClient, type AppliedCallback } from '../apply/client';
import { ApplyWord } from '../apply/apply-status';
import { MvccReader, type HeaderIdentity } from '../mvcc';
import { SharedHistogram, registerSharedHistogram } from '../metrics/shared-histogram';
import { registry, BACKEND_COMMIT_DURATION } from '../metrics/registry';
import type { Membership } from './membership';

/** What the server needs of the state machine. */
export interface StateMachine {
  /** Hands committed entries to the apply worker (RaftHost's ApplySink). */
  apply(entries: Entry[]): void;
  onApplied(cb: AppliedCallback): void;
  /** Raft index of the last applied entry (the consistent index). */
  appliedIndex(): number;
  /** Store revision after the last applied entry. */
  currentRevision(): number;
  dbSizeBytes(): number;
  dbSizeInUseBytes(): number;
  /** Encoded RangeResponse at the request's revision. Throws EtcdError (Compacted, FutureRev). */
  range(req: RangeRequest, id: HeaderIdentity): Uint8Array;
  readonly reader: MvccReader;
  close(): Promise<void>;
}

let commitHistogram: SharedHistogram | null = null;

function backendCommitHistogram(): SharedHistogram {
  if (commitHistogram === null) {
    commitHistogram = SharedHistogram.create([...BACKEND_COMMIT_DURATION.buckets]);
    registerSharedHistogram(registry, BACKEND_COMMIT_DURATION.name, BACKEND_COMMIT_DURATION.help, commitHistogram);
  }
  return commitHistogram;
}

/** Starts the apply worker on `<memberDir>/mvcc` and opens a main-thread reader on the same LMDB env. */
export async function openStateMachine(opts: { memberDir: string; membership: Membership; logger: Logger }): Promise<StateMachine> {
  const client = await ApplyClient.start({
    dataDir: opts.memberDir,
    memberId: opts.membership.localId,
    clusterId: opts.membership.clusterId,
    commitHistogram: backendCommitHistogram(),
  });
  const reader = MvccReader.open(opts.memberDir);
  const sm = new LmdbStateMachine(client, reader);
  byReader.set(reader, sm);
  return sm;
}

/** State machines by their reader: how services layered on a running EtcdServer reach applied MVCC events. */
const byReader = new WeakMap<MvccReader, StateMachine>();

/**
 * The state machine owning `reader` (EtcdServer exposes only its reader). Callbacks registered with its onApplied
 * run after the server's own (which settles proposals), with each batch's MVCC events as third argument.
 */
export function stateMachineOf(reader: MvccReader): StateMachine | undefined {
  return byReader.get(reader);
}

class LmdbStateMachine implements StateMachine {
  constructor(
    private readonly client: ApplyClient,
    readonly reader: MvccReader,
  ) {}

  apply(entries: Entry[]): void {
    this.client.apply(entries);
  }

  onApplied(cb: AppliedCallback): void {
    this.client.onApplied(cb);
  }

  appliedIndex(): number {
    return this.client.status.load(ApplyWord.AppliedIndex);
  }

  currentRevision(): number {
    return this.client.status.load(ApplyWord.Revision);
  }

  dbSizeBytes(): number {
    return this.client.status.load(ApplyWord.DbSizeBytes);
  }

  dbSizeInUseBytes(): number {
    return this.client.status.load(ApplyWord.DbSizeInUseBytes);
  }

  range(req: RangeRequest, id: HeaderIdentity): Uint8Array {
    return this.reader.rangeEncoded(req, id);
  }

  async close(): Promise<void> {
    await this.client.close();
    await this.reader.close();
  }
}
