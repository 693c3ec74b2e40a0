/**
 * Raft log compaction and InstallSnapshot (etcd: etcdserver/server.go triggerSnapshot + snapshot sending through
 * rafthttp's snapshot sender + applySnapshot on the receiving member).
 *
 * The state machine's state *is* the LMDB environment, so a Raft snapshot here carries metadata only
 * (index, term, ConfState); its data is produced on demand when a follower needs it.
 *
 * Compaction (every member): once the applied index is more than `snapshotCount` past the last snapshot, and the
 * LMDB fsync (ApplyWord.SyncedIndex) covers it, we
 *   1. `MemoryStorage.createSnapshot(S)` at S = the LMDB-synced index (never above it: the WAL marker written next
 *      makes a restart replay only entries > S, so LMDB must already hold S durably),
 *   2. `MemoryStorage.compact(S - catchupEntries)` (etcd's SnapshotCatchUpEntries = 5000 kept for slow followers),
 *   3. sends the WAL worker one control record: snapshot marker (S, term) + release of every segment whose
 *      entries are all <= S, done after that batch's fdatasync, keeping at least --max-wals segment files
 *      (0 = keep every file). Never blocks the event loop.
 *
 * Sending (leader): a MsgSnap that Raft emits for a follower is not sent on the message stream. We take a
 * consistent copy of LMDB (`env.backup` = mdb_env_copy2 on a libuv thread), read the copy's consistent
 * index/term C/T, and stream the file on a separate connection (`PeerTransport.sendSnapshot`) with the MsgSnap
 * (snapshot metadata = C/T + ConfState) as meta. C >= Raft's snapshot index, and the entries after C are still in
 * the leader's log (C <= applied, compaction index <= S <= C). The transport reports the outcome
 * (`onSnapshotStatus` → RawNode.reportSnapshot); a failure before the transfer starts is reported here.
 *
 * Receiving (follower): stream → temp file (fsynced), then `StateMachine.restoreFrom` (entries held back, apply
 * worker drained and closed, reader closed, atomic rename over data.mdb, dir fsync, new worker + reader, consistent
 * index checked), then the MsgSnap is stepped into Raft. Its Ready carries the snapshot: RaftHost writes the WAL
 * marker + HardState (DurableLog.append) and `storage.applySnapshot` once durable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import { MessageType, decodeMessages, encodeMessages, type ConfState, type MemoryStorage, type Message } from '../raft';
import { metrics } from '../metrics/registry';
import type { DurableLog } from './durable-log';
import type { StateMachine } from './state-machine';
import { idToHex } from './ids';
import { fsyncDir } from '../wal/segment';

/** etcd's SnapshotCatchUpEntries: entries kept in memory behind a snapshot for slow followers. */
export const SNAPSHOT_CATCHUP_ENTRIES = 5000;
/** How often a due snapshot re-checks whether the LMDB fsync caught up (ms). */
export const SNAPSHOT_RETRY_MS = 50;
/** Directory under the member dir holding snapshot copies in transit. */
export const SNAP_TMP_SUBDIR = 'snap.tmp';

const EMPTY = new Uint8Array(0);

/** What the snapshotter needs of the server. */
export interface SnapshotterOptions {
  memberDir: string;
  /** --snapshot-count (0 disables compaction). */
  snapshotCount: number;
  /** Entries kept behind a snapshot; default ETCETERA_SNAPSHOT_CATCHUP_ENTRIES or SNAPSHOT_CATCHUP_ENTRIES. */
  catchupEntries?: number;
  /** --max-wals: segment files kept at least (0 = unlimited retention). */
  maxWals: number;
  logger: Logger;
  storage: MemoryStorage;
  log: DurableLog;
  sm: StateMachine;
  /** Raft's commit index now. */
  commitIndex(): number;
  /** Steps a message into Raft (EtcdServer.receive). */
  step(m: Message): void;
  /** RawNode.reportSnapshot. */
  reportSnapshot(to: number, ok: boolean): void;
  /** The ConfState a sent snapshot carries (the sender's current membership); default the storage snapshot's. */
  confState?: () => ConfState;
  /** The membership a sent snapshot carries in its (otherwise empty) data (src/server/join.ts encoding). */
  membershipData?: () => Uint8Array;
  /** A received snapshot's data (the sender's membership), handed over before the snapshot is installed. */
  onMembership?: (data: Uint8Array) => void;
}

/** Sends snapshot data on the snapshot connection (PeerTransport.sendSnapshot). */
export type SnapshotSender = (to: number, meta: Uint8Array, data: Buffer | AsyncIterable<Uint8Array>) => Promise<void>;

function catchupFromEnv(): number | undefined {
  const v = Number(process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES ?? '');
  return Number.isInteger(v) && v >= 0 && process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES !== '' ? v : undefined;
}

/** Log compaction + InstallSnapshot for one member (see module doc). */
export class Snapshotter {
  readonly catchupEntries: number;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly sending = new Set<number>();
  private receiving = false;
  /** No compaction marker may be written at or below this index (a received snapshot not yet in storage). */
  private markerFloor = 0;
  private seq = 0;
  /** Counters for tests and logs. */
  readonly stats = { snapshots: 0, sent: 0, installed: 0, lastSnapshotIndex: 0, releasedFiles: 0 };

  constructor(private readonly o: SnapshotterOptions) {
    this.catchupEntries = o.catchupEntries ?? catchupFromEnv() ?? SNAPSHOT_CATCHUP_ENTRIES;
    this.recoverInterruptedInstall();
    o.log.onReleased((info) => {
      this.stats.releasedFiles += info.files.length;
      o.logger.info({ 'release-index': info.releaseIndex, removed: info.files, remaining: info.remaining }, 'released WAL segments');
    });
  }

  /**
   * At start: a crash between "WAL snapshot marker durable" and "received file renamed over data.mdb" leaves a
   * marker above the store's consistent index and the received file in SNAP_TMP_SUBDIR: finish the restore before
   * anything is applied (entries handed meanwhile are held). Everything else in SNAP_TMP_SUBDIR is removed.
   */
  private recoverInterruptedInstall(): void {
    const { o } = this;
    const tmpDir = path.join(o.memberDir, SNAP_TMP_SUBDIR);
    const marker = o.log.replay.snapshot;
    const applied = o.sm.appliedIndex();
    let keep: string | null = null;
    if (marker && marker.metadata.index > applied) {
      const file = path.join(tmpDir, `recv-${marker.metadata.index}.db`);
      if (fs.existsSync(file)) keep = file;
      else {
        o.logger.error(
          { 'snapshot-index': marker.metadata.index, 'applied-index': applied },
          'the WAL snapshot marker is ahead of the MVCC store and the received snapshot file is missing',
        );
      }
    }
    let names: string[] = [];
    try {
      names = fs.readdirSync(tmpDir);
    } catch {
      /* no temp dir */
    }
    for (const n of names) {
      const p = path.join(tmpDir, n);
      if (p !== keep) fs.rmSync(p, { recursive: true, force: true });
    }
    if (keep !== null && marker) {
      const index = marker.metadata.index;
      this.markerFloor = index;
      o.logger.warn({ 'snapshot-index': index, 'applied-index': applied }, 'finishing an interrupted snapshot install');
      metrics.etcd_server_snapshot_apply_in_progress_total.set(1);
      o.sm.restoreFrom(keep, index).then(
        () => {
          metrics.etcd_server_snapshot_apply_in_progress_total.set(0);
          o.logger.info({ 'snapshot-index': index }, 'finished the interrupted snapshot install');
        },
        (e: unknown) => {
          metrics.etcd_server_snapshot_apply_in_progress_total.set(0);
          o.logger.error({ 'snapshot-index': index, err: (e as Error)?.message ?? String(e) }, 'could not finish the interrupted snapshot install');
        },
      );
    }
  }

  /** Called after every applied batch ('applied' event). */
  onApplied(appliedIndex: number): void {
    if (this.stopped || this.o.snapshotCount <= 0 || this.o.sm.restoring()) return;
    const snapi = this.o.storage.snapshot().metadata.index;
    if (appliedIndex - snapi <= this.o.snapshotCount) return;
    this.trySnapshot();
  }

  private trySnapshot(): void {
    if (this.stopped || this.receiving || this.o.sm.restoring()) return;
    const { storage, sm } = this.o;
    const snapi = Math.max(storage.snapshot().metadata.index, this.markerFloor);
    const s = Math.min(sm.syncedIndex(), storage.lastIndex());
    if (s - snapi <= this.o.snapshotCount) {
      // Due, but LMDB's fsync does not cover enough yet: check again shortly (the worker syncs every ~100 ms).
      if (this.retry === null && sm.appliedIndex() - snapi > this.o.snapshotCount) {
        this.retry = setTimeout(() => {
          this.retry = null;
          this.trySnapshot();
        }, SNAPSHOT_RETRY_MS);
        this.retry.unref();
      }
      return;
    }
    this.snapshotAt(s);
  }

  /** Creates the snapshot at `index` (LMDB-durable), compacts and releases the WAL. Exposed for tests. */
  snapshotAt(index: number): void {
    const { storage, log, logger } = this.o;
    const t0 = performance.now();
    const cs = storage.snapshot().metadata.confState;
    const snap = storage.createSnapshot(index, cs, EMPTY);
    const compacti = index > this.catchupEntries ? index - this.catchupEntries : 1;
    let compacted = false;
    if (compacti >= storage.firstIndex()) {
      storage.compact(compacti);
      compacted = true;
    }
    log.saveSnapshot(index, snap.metadata.term, index, this.o.maxWals);
    metrics.etcd_debugging_snap_save_total_duration_seconds.observe((performance.now() - t0) / 1000);
    this.stats.snapshots++;
    this.stats.lastSnapshotIndex = index;
    logger.info(
      { 'snapshot-index': index, 'snapshot-term': snap.metadata.term, 'compact-index': compacted ? compacti : null, 'first-index': storage.firstIndex() },
      'saved snapshot and compacted raft log',
    );
  }

  /**
   * Routes outgoing messages: MsgSnap goes through `sender` on a snapshot connection, the rest are returned for
   * the message stream.
   */
  route(msgs: Message[], sender: SnapshotSender): Message[] {
    let rest: Message[] | null = null;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      if (m.type !== MessageType.MsgSnap) {
        rest?.push(m);
        continue;
      }
      if (rest === null) rest = msgs.slice(0, i);
      this.send(m, sender);
    }
    return rest ?? msgs;
  }

  /** Starts streaming a database snapshot for MsgSnap `m` (at most one transfer per follower at a time). */
  send(m: Message, sender: SnapshotSender): void {
    const to = m.to;
    if (this.stopped || this.sending.has(to)) return; // Raft waits for the running transfer's report
    this.sending.add(to);
    void this.doSend(m, sender).finally(() => this.sending.delete(to));
  }

  private async doSend(m: Message, sender: SnapshotSender): Promise<void> {
    const { logger } = this.o;
    const to = m.to;
    const dir = path.join(this.o.memberDir, SNAP_TMP_SUBDIR, `send-${idToHex(to)}-${++this.seq}`);
    let started = false;
    try {
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'db');
      const t0 = performance.now();
      const copy = await this.o.sm.copyTo(file);
      const size = fs.statSync(file).size;
      const confState = this.o.confState?.() ?? this.o.storage.snapshot().metadata.confState;
      const data = this.o.membershipData?.() ?? EMPTY;
      const msg: Message = { ...m, entries: [], snapshot: { metadata: { index: copy.index, term: copy.term, confState }, data } };
      const meta = encodeMessages([msg]);
      logger.info(
        { 'remote-peer-id': idToHex(to), 'snapshot-index': copy.index, 'snapshot-term': copy.term, bytes: size, 'copy-ms': Math.round(performance.now() - t0) },
        'sending database snapshot',
      );
      if (this.stopped) throw new Error('server stopped');
      started = true;
      await sender(to, meta, fs.createReadStream(file, { highWaterMark: 1 << 20 }));
      this.stats.sent++;
      logger.info({ 'remote-peer-id': idToHex(to), 'snapshot-index': copy.index }, 'sent database snapshot');
    } catch (e) {
      // Once the transfer started the transport reported the outcome itself (onSnapshotStatus).
      if (!started && !this.stopped) this.o.reportSnapshot(to, false);
      logger.warn({ 'remote-peer-id': idToHex(to), err: (e as Error)?.message ?? String(e) }, 'database snapshot send failed');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Handles a snapshot streamed by the leader (PeerTransport onSnapshot): installs it into LMDB, then steps the
   * MsgSnap into Raft. Resolves once installed (the leader's send then succeeds); rejects on failure.
   */
  async receive(from: number, meta: Uint8Array, data: Buffer | AsyncIterable<Uint8Array>): Promise<void> {
    const { logger, sm } = this.o;
    const msgs = decodeMessages(meta);
    const m = msgs[0];
    if (msgs.length !== 1 || m === undefined || m.type !== MessageType.MsgSnap || m.snapshot === undefined) {
      throw new Error('snapshot metadata is not one MsgSnap');
    }
    if (this.stopped) throw new Error('server stopped');
    if (this.receiving || sm.restoring()) throw new Error('another snapshot is being installed');
    const md = m.snapshot.metadata;
    if (md.index <= this.o.commitIndex()) {
      // Nothing to install (our log already commits it): let Raft answer with its commit index.
      await drain(data);
      this.o.step(m);
      return;
    }
    this.receiving = true;
    const tmpDir = path.join(this.o.memberDir, SNAP_TMP_SUBDIR);
    const file = path.join(tmpDir, `recv-${md.index}.db`);
    metrics.etcd_server_snapshot_apply_in_progress_total.set(1);
    let markerDurable = false;
    try {
      logger.info({ 'remote-peer-id': idToHex(from), 'snapshot-index': md.index, 'snapshot-term': md.term }, 'receiving database snapshot');
      const t0 = performance.now();
      fs.mkdirSync(tmpDir, { recursive: true });
      const bytes = await writeFileSynced(file, data);
      fsyncDir(tmpDir);
      metrics.etcd_debugging_snap_save_total_duration_seconds.observe((performance.now() - t0) / 1000);
      // The marker goes to the WAL before the store is replaced: after a crash in between, the marker plus the
      // kept file let the next start finish the install (recoverInterruptedInstall); after the rename, the store
      // and the WAL agree. The Ready that follows the MsgSnap writes the marker again with the HardState.
      this.markerFloor = Math.max(this.markerFloor, md.index);
      if (m.snapshot.data.length > 0) this.o.onMembership?.(m.snapshot.data);
      await this.o.log.waitDurable(this.o.log.saveSnapshot(md.index, md.term, 0, 0));
      markerDurable = true;
      await sm.restoreFrom(file, md.index);
      this.o.step(m);
      this.stats.installed++;
      logger.info(
        { 'remote-peer-id': idToHex(from), 'snapshot-index': md.index, 'snapshot-term': md.term, bytes, 'took-ms': Math.round(performance.now() - t0) },
        'installed database snapshot from leader (InstallSnapshot)',
      );
    } catch (e) {
      logger.error({ 'remote-peer-id': idToHex(from), 'snapshot-index': md.index, err: (e as Error)?.message ?? String(e) }, 'failed to install database snapshot');
      throw e;
    } finally {
      this.receiving = false;
      metrics.etcd_server_snapshot_apply_in_progress_total.set(0);
      // Once the marker is durable the file is what a restart needs to finish a failed install: keep it.
      if (!markerDurable || !fs.existsSync(file) || sm.appliedIndex() >= md.index) fs.rmSync(file, { force: true });
    }
  }

  /** Stops timers; transfers in flight end with the transport. */
  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }
}

async function drain(data: Buffer | AsyncIterable<Uint8Array>): Promise<void> {
  if (Buffer.isBuffer(data)) return;
  for await (const _chunk of data) {
    /* discard */
  }
}

/** Writes the stream to `file` and fsyncs it. @returns the byte count. */
async function writeFileSynced(file: string, data: Buffer | AsyncIterable<Uint8Array>): Promise<number> {
  const fh = await fs.promises.open(file, 'w');
  let n = 0;
  try {
    if (Buffer.isBuffer(data)) {
      await fh.write(data);
      n = data.length;
    } else {
      for await (const chunk of data) {
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
        n += chunk.length;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return n;
}
