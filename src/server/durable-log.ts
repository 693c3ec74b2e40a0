/**
 * The server's view of the WAL (etcd: etcdserver/storage.go): replay at start, then one append per Ready
 * handed to the WAL worker, and a notification when that Ready is durable. Checks that the WAL belongs to
 * this member and cluster before anything else touches it.
 */
import * as path from 'node:path';
import type { Logger } from '../log';
import type { Entry, HardState, Snapshot } from '../raft';
import { WalClient, WalFatalError } from '../wal/client';
import type { WalReplay } from '../wal/wal';
import { SharedHistogram, registerSharedHistogram } from '../metrics/shared-histogram';
import { registry, WAL_FSYNC_DURATION } from '../metrics/registry';
import { MembershipError, type Membership } from './membership';

/** What was replayed from the WAL, in Raft's shapes. */
export interface LogReplay {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
}

/** One member's WAL behind the RaftHost's LogSink interface. */
export interface DurableLog {
  readonly replay: LogReplay;
  /**
   * Appends one Ready's HardState and entries (one ring record, one fdatasync in the worker). A snapshot (a
   * follower installing the leader's) is recorded first as a snapshot marker (the state machine already holds it).
   */
  append(hardState: HardState | null, entries: Entry[], snapshot: Snapshot | null): void;
  /**
   * Records a snapshot marker at (index, term) — the state machine's durable state must already cover `index` —
   * and, once it is durable, deletes the segments whose entries are all <= releaseIndex, keeping at least
   * `maxWals` files (0 = keep all). Never blocks (a control record on the walIn ring). @returns its ring seq.
   */
  saveSnapshot(index: number, term: number, releaseIndex: number, maxWals: number): number;
  /** Resolves once ring record `seq` (e.g. from saveSnapshot) is durable; rejects if the WAL worker fails first. */
  waitDurable(seq: number): Promise<void>;
  /** `cb` runs after the WAL worker deleted released segment files. */
  onReleased(cb: (info: { releaseIndex: number; files: string[]; remaining: number }) => void): void;
  /** Writes a commit-only HardState change; the WAL worker does not fdatasync for it (the next synced batch does). */
  appendLazy(hardState: HardState): void;
  /** `cb` runs each time the latest append is durable. */
  onDurable(cb: () => void): void;
  /** `cb` runs once if the WAL worker stops on an I/O error (full disk, EIO): nothing more becomes durable. */
  onFatal(cb: (e: WalFatalError) => void): void;
  /** Stops the worker after everything appended is durable. */
  close(): Promise<void>;
  /** Metrics: bytes queued in the walIn ring, bytes the WAL worker wrote since it started. */
  ioStats?(): { ringUsedBytes: number; writeBytes: number };
}

let fsyncHistogram: SharedHistogram | null = null;

/**
 * Smallest ring we hand to a worker (bytes); enough for tens of thousands of typical (~300-byte) entries per wake.
 * Each of the three rings (walIn, applyIn, applyOut) is fully resident once it has wrapped, so this is paid three
 * times per member in RSS.
 */
export const MIN_RING_BYTES = 8 * 1024 * 1024;

/**
 * Ring size for hand-offs that must carry any single entry: a ring's largest record is half its capacity, so the
 * ring is at least four times the largest request (--max-request-bytes plus framing), rounded up to a power of two.
 * Sized from the limit rather than fixed so memory stays small by default (pages of a SharedArrayBuffer count
 * toward RSS once a ring has wrapped) and a large --max-request-bytes still fits.
 */
export function ringBytesFor(maxRequestBytes: number, largestV2EntryBytes = 0): number {
  // A v2 entry (up to 10 MiB, only with --enable-v2) needs to fit once, not four times: sizing for four would
  // make each ring 64 MiB of resident memory.
  const need = Math.max(MIN_RING_BYTES, 4 * (maxRequestBytes + 64 * 1024), 2 * (largestV2EntryBytes + 64 * 1024));
  return 2 ** Math.ceil(Math.log2(need));
}

/** The process-wide fsync histogram, registered once under etcd's name. */
function walFsyncHistogram(): SharedHistogram {
  if (fsyncHistogram === null) {
    fsyncHistogram = SharedHistogram.create([...WAL_FSYNC_DURATION.buckets]);
    registerSharedHistogram(registry, WAL_FSYNC_DURATION.name, WAL_FSYNC_DURATION.help, fsyncHistogram);
  }
  return fsyncHistogram;
}

/**
 * Opens (or creates) `<memberDir>/wal` and replays it. Throws MembershipError when the WAL was written by
 * another member or cluster, and the WAL's own errors (e.g. a corrupt record mid-log) unchanged.
 */
export async function openDurableLog(opts: {
  memberDir: string;
  membership: Membership;
  logger: Logger;
  /** WAL segment size (tests); default ETCETERA_WAL_SEGMENT_BYTES from the environment, else 64 MiB. */
  segmentSizeBytes?: number;
  /** walIn ring size (power of two): must hold the largest entry twice over (see ringBytesFor). */
  ringCapacityBytes?: number;
}): Promise<DurableLog> {
  const { membership, logger } = opts;
  let released: (info: { releaseIndex: number; files: string[]; remaining: number }) => void = () => {};
  const envSeg = Number(process.env.ETCETERA_WAL_SEGMENT_BYTES ?? '');
  const segmentSizeBytes = opts.segmentSizeBytes ?? (Number.isInteger(envSeg) && envSeg > 0 ? envSeg : undefined);
  const { client, replay, created } = await WalClient.open({
    dir: path.join(opts.memberDir, 'wal'),
    metadata: { clusterId: membership.clusterId, memberId: membership.localId },
    fsyncHistogram: walFsyncHistogram(),
    segmentSizeBytes,
    ringCapacityBytes: opts.ringCapacityBytes,
    onWarn: (fields, msg) => logger.warn(fields, msg),
    onReleased: (info) => released(info),
  });
  if (replay.metadata.clusterId !== membership.clusterId || replay.metadata.memberId !== membership.localId) {
    await client.close();
    throw new MembershipError(
      `WAL in ${opts.memberDir} belongs to member ${replay.metadata.memberId.toString(16)} of cluster ${replay.metadata.clusterId.toString(16)}, ` +
        `not member ${membership.localId.toString(16)} of cluster ${membership.clusterId.toString(16)}`,
    );
  }
  if (replay.repaired) logger.warn({ ...replay.repaired }, 'repaired a torn or corrupt WAL tail');
  if (!created) logger.info({ entries: replay.entries.length, hardState: replay.hardState, snapshot: replay.snapshot }, 'replayed WAL');
  const log = new WalLog(client, toLogReplay(replay));
  released = (info) => log.released(info);
  return log;
}

function toLogReplay(r: WalReplay): LogReplay {
  return {
    hardState: r.hardState,
    entries: r.entries as Entry[],
    snapshot: r.snapshot
      ? { metadata: { index: r.snapshot.index, term: r.snapshot.term, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) }
      : null,
  };
}

class WalLog implements DurableLog {
  private lastSeq = 0;
  private cb: () => void = () => {};
  private releasedCb: (info: { releaseIndex: number; files: string[]; remaining: number }) => void = () => {};

  constructor(
    private readonly client: WalClient,
    readonly replay: LogReplay,
  ) {
    client.onDurable((_index, _term, seq) => {
      if (seq >= this.lastSeq && this.lastSeq !== 0) {
        this.lastSeq = 0;
        this.cb();
      }
    });
  }

  ioStats(): { ringUsedBytes: number; writeBytes: number } {
    return { ringUsedBytes: this.client.ringUsedBytes(), writeBytes: this.client.writeBytes() };
  }

  append(hardState: HardState | null, entries: Entry[], snapshot: Snapshot | null): void {
    if (snapshot) {
      // Marker first: replay then drops every older entry <= its index, and the entries of this Ready follow it.
      this.client.control({ snapIndex: snapshot.metadata.index, snapTerm: snapshot.metadata.term, releaseIndex: 0, maxWals: 0 });
    }
    this.lastSeq = this.client.append(hardState, entries);
  }

  saveSnapshot(index: number, term: number, releaseIndex: number, maxWals: number): number {
    return this.client.control({ snapIndex: index, snapTerm: term, releaseIndex, maxWals });
  }

  onReleased(cb: (info: { releaseIndex: number; files: string[]; remaining: number }) => void): void {
    this.releasedCb = cb;
  }

  waitDurable(seq: number): Promise<void> {
    return this.client.waitDurable(seq);
  }

  released(info: { releaseIndex: number; files: string[]; remaining: number }): void {
    this.releasedCb(info);
  }

  appendLazy(hardState: HardState): void {
    this.client.appendCommitOnly(hardState);
  }

  onDurable(cb: () => void): void {
    this.cb = cb;
  }

  onFatal(cb: (e: WalFatalError) => void): void {
    this.client.onFatal(cb);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
