/**
 * The server's view of the MVCC state machine: committed entries go to the apply worker (one ring record per
 * Ready), results come back per request, and reads are served on the main thread straight from LMDB
 * (etcd: etcdserver/apply.go + mvcc). Counters the worker publishes (applied index, revision, db size) are read
 * from shared memory, without a thread hop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import type { Entry } from '../raft';
import type { RangeRequest } from '../wire/codec';
import { ApplyClient, type AppliedCallback, type ApplyClientOptions, type PreparedApplyClient } from '../apply/client';
import { ApplyWord, applyFaultCodeOf, type ApplyFaultCode, type ApplyStatus } from '../apply/apply-status';
import { MvccReader, type HeaderIdentity } from '../mvcc';
import { MVCC_SUBDIR } from '../mvcc/env';
import { copyMvccEnvInWorker } from '../mvcc/copy';
import type { HashKVResult } from '../mvcc/hash-kv';
import { hashKVOffThread } from '../mvcc/read-pool';
import { etcdError } from '../errors';
import { SharedHistogram, registerSharedHistogram } from '../metrics/shared-histogram';
import { registry, BACKEND_COMMIT_DURATION } from '../metrics/registry';
import type { Membership } from './membership';
import { fsyncDir } from '../wal/segment';
import { DefragCatchUp } from './defrag-catchup';

/** What the server needs of the state machine. */
export interface StateMachine {
  /** Hands committed entries to the apply worker (RaftHost's ApplySink); never refuses them. */
  apply(entries: Entry[]): void;
  /** False while the hand-off queue (or, during a store swap, the held-back entries) is at its bound. */
  hasRoom(): boolean;
  /** Resolves once {@link hasRoom} may be true again (never rejects). */
  whenRoom(): Promise<void>;
  /**
   * Null while reads can be served now; during a snapshot restore or defragment, a promise resolving when the new
   * store is open (reads wait for it instead of failing).
   */
  whenReadable(): Promise<void> | null;
  onApplied(cb: AppliedCallback): void;
  /** `cb` runs once if the apply worker stops on an I/O error (full disk, LMDB map full). */
  onFatal(cb: (message: string, code: ApplyFaultCode) => void): void;
  /** Raft index of the last applied entry (the consistent index). */
  appliedIndex(): number;
  /** Store revision after the last applied entry. */
  currentRevision(): number;
  dbSizeBytes(): number;
  dbSizeInUseBytes(): number;
  /** Encoded RangeResponse at the request's revision. Throws EtcdError (Compacted, FutureRev; Timeout while the store is swapped: wait for {@link whenReadable} first). */
  range(req: RangeRequest, id: HeaderIdentity): Uint8Array;
  /** The main-thread reader. Replaced by restoreFrom (always read it through this property, never keep it). */
  readonly reader: MvccReader;
  /** Consistent index covered by the last LMDB fsync (a snapshot marker / WAL release may not go beyond it). */
  syncedIndex(): number;
  /** Term of the last applied entry. */
  appliedTerm(): number;
  /** True while restoreFrom runs (entries handed meanwhile are held back). */
  restoring(): boolean;
  /**
   * Writes a consistent copy of the LMDB data file to `file` (mdb_env_copy2 on a libuv thread, never the event
   * loop) and returns the consistent index/term it holds.
   */
  copyTo(file: string): Promise<{ index: number; term: number; revision: number }>;
  /**
   * Replaces the store with the LMDB data file `file` (a leader's copy, already fsynced): holds back new entries,
   * lets the apply worker finish and close its env, closes the reader, renames `file` over `<mvcc>/data.mdb`,
   * fsyncs the directory, starts a new apply worker and reader, checks the consistent index is `expectIndex`,
   * then hands the held entries on and reports the new applied index to the onApplied callbacks (with no results).
   * @throws when the received store is not at `expectIndex` or the worker cannot reopen it.
   */
  restoreFrom(file: string, expectIndex: number): Promise<void>;
  /**
   * etcd api: Maintenance.Defragment (etcd backend.defrag): rewrites the LMDB file as a compacted copy holding only
   * the pages in use, so the file (etcd's db size, what --quota-backend-bytes compares) shrinks after a compaction.
   * Online, unlike etcd 3.4 (which blocks reads and writes for the whole copy, its issue #9222): the copy is made in
   * a child process while the store keeps applying and serving, caught up by a shadow apply worker
   * (./defrag-catchup.ts); only the final swap holds new entries back (bounded: MAX_HELD_BYTES) and makes reads
   * wait ({@link whenReadable}) while the reader reopens. Rejects on I/O errors or when a snapshot install or close
   * interrupts it (the old file is then kept).
   */
  defragment(): Promise<void>;
  /**
   * etcd's HashByRev(`revision`) (0 = current) on a worker thread (the piscina read pool, src/mvcc/read-pool.ts), so a scan of
   * the whole history never blocks the event loop; waits for a running store swap first, and a swap waits for it.
   * @throws EtcdError Compacted, FutureRev.
   */
  hashKVOffThread(revision: number): Promise<HashKVResult>;
  /**
   * Runs `fn`, which opens the store's LMDB environment on another thread (the snapshot export, Maintenance.Hash),
   * never across a store swap (defragment, snapshot install): waits for a running swap first, and a swap waits for
   * `fn` to settle (a worker holding the process-shared env would make the swap's reopen hand out the old file, or
   * read an env the swap closed). Resolves or rejects as `fn` does.
   */
  withStoreEnv<T>(fn: () => Promise<T>): Promise<T>;
  /** `cb` runs after a snapshot restore replaced the store, before anything newer is applied (watchers resync). */
  onRestored(cb: () => void): void;
  close(): Promise<void>;
  /** A word the apply worker publishes (counters, alarms), without a thread hop; 0 for a word never written. */
  applyWord?(w: ApplyWord): number;
  /** The current apply worker's status words (word histograms). */
  applyStatus?(): ApplyStatus;
  /** Bytes queued in the applyIn / applyOut rings. */
  ringUsedBytes?(): { applyIn: number; applyOut: number };
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
export async function openStateMachine(opts: { memberDir: string; membership: Membership; logger: Logger; ringBytes?: number }): Promise<StateMachine> {
  const clientOpts: ApplyClientOptions = {
    applyInBytes: opts.ringBytes,
    applyOutBytes: opts.ringBytes,
    dataDir: opts.memberDir,
    memberId: opts.membership.localId,
    clusterId: opts.membership.clusterId,
    commitHistogram: backendCommitHistogram(),
  };
  fs.rmSync(path.join(opts.memberDir, DEFRAG_SUBDIR), { recursive: true, force: true }); // left by a crash mid-defrag
  const client = await ApplyClient.start(clientOpts);
  const reader = MvccReader.open(opts.memberDir);
  const sm = new LmdbStateMachine(client, reader, clientOpts, opts.memberDir);
  return sm;
}

/**
 * Bytes of committed entries held back while the store is swapped (defragment, snapshot install) at most; at the
 * bound hasRoom() is false and Raft keeps further entries until the swap ends. One Ready may overshoot it.
 */
export const MAX_HELD_BYTES = 64 * 1024 * 1024;

/** How swapStore runs. */
interface SwapOptions {
  /** An apply worker spawned ahead (ApplyClient.prepare) to open the new store with; swapStore opens or cancels it. */
  next?: PreparedApplyClient;
  /** Run the source while the old apply worker drains (it needs neither that worker's end nor its store). */
  sourceWhileClosing?: boolean;
  /**
   * Serve reads from the old reader until it closes (the new file holds the same state), instead of making them
   * wait for the whole swap.
   */
  readsDuringSwap?: boolean;
}

/** What a swap's source produced: the file to rename into place (null: already in place) and its index if known. */
interface SwapSource { file: string | null; expectIndex?: number }

/** fdatasync of `file` on a libuv thread. */
async function fdatasyncFile(file: string): Promise<void> {
  const h = await fs.promises.open(file, 'r');
  try { await h.datasync(); } finally { await h.close(); }
}

/** fsync of directory `dir` (a rename in it made durable) on a libuv thread. */
async function fsyncDirAsync(dir: string): Promise<void> {
  const h = await fs.promises.open(dir, 'r');
  try { await h.sync(); } finally { await h.close(); }
}

/** How often a defragment checks the apply worker's progress, ms. */
const APPLIED_POLL_MS = 5;

/** Where a defragment writes its compacted copy (`<memberDir>/mvcc.defrag/data.mdb`); removed on open and after use. */
const DEFRAG_SUBDIR = `${MVCC_SUBDIR}.defrag`;

class LmdbStateMachine implements StateMachine {
  private readonly appliedCbs: AppliedCallback[] = [];
  private readonly fatalCbs: ((message: string, code: ApplyFaultCode) => void)[] = [];
  /** Non-null while restoreFrom runs: entries handed meanwhile wait here. */
  private held: Entry[][] | null = null;
  private heldBytes = 0;
  /** Resolved when the running swap ends (reads and held-back hand-offs wait on it); null when none runs. */
  private swapDone: Promise<void> | null = null;
  /** Resolved when reads may go on (the reader is open on the store in place); null while they may. */
  private readsGate: Promise<void> | null = null;
  /** True from the start of a store swap (waiting for env users included) to its end. */
  private swapping = false;
  /** Worker threads holding the store's env open (withStoreEnv); a swap waits until none does. */
  private envUsers = 0;
  private envIdleWaiters: (() => void)[] = [];
  /** Non-null while a swap runs or waits for env users: new env users wait for it. */
  private envGate: Promise<void> | null = null;
  /** Index of the last entry handed to {@link apply}. */
  private lastHandedIndex = 0;
  /** The running online defragment's catch-up state (./defrag-catchup.ts); null when none runs. */
  private defrag: DefragCatchUp | null = null;

  constructor(
    private client: ApplyClient,
    private rdr: MvccReader,
    private readonly clientOpts: ApplyClientOptions,
    private readonly memberDir: string,
  ) {}

  get reader(): MvccReader {
    return this.rdr;
  }

  apply(entries: Entry[]): void {
    if (entries.length > 0) this.lastHandedIndex = entries[entries.length - 1].index;
    if (this.held !== null) {
      if (entries.length > 0) this.held.push(entries);
      for (const e of entries) this.heldBytes += e.data.length;
      return;
    }
    this.client.apply(entries);
    this.defrag?.handed(entries);
  }

  hasRoom(): boolean {
    if (this.held !== null) return this.heldBytes < MAX_HELD_BYTES;
    return this.client.hasRoom() && (this.defrag === null || this.defrag.hasRoom());
  }

  async whenRoom(): Promise<void> {
    while (!this.hasRoom()) {
      if (this.swapDone !== null) await this.swapDone;
      else if (!this.client.hasRoom()) await this.client.whenRoom();
      else if (this.defrag !== null) await this.defrag.whenRoom();
      if (this.client.fatal() !== null) return;
    }
  }

  whenReadable(): Promise<void> | null {
    return this.readsGate;
  }

  onApplied(cb: AppliedCallback): void {
    this.appliedCbs.push(cb);
    this.client.onApplied(cb);
  }

  onFatal(cb: (message: string, code: ApplyFaultCode) => void): void {
    this.fatalCbs.push(cb);
    this.client.onFatal(cb);
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

  syncedIndex(): number {
    return this.client.syncedIndex();
  }

  appliedTerm(): number {
    return this.client.status.load(ApplyWord.AppliedTerm);
  }

  applyWord(w: ApplyWord): number {
    return this.client.status.load(w);
  }

  applyStatus(): ApplyStatus {
    return this.client.status;
  }

  ringUsedBytes(): { applyIn: number; applyOut: number } {
    return this.client.ringUsedBytes();
  }

  restoring(): boolean {
    return this.held !== null;
  }

  async copyTo(file: string): Promise<{ index: number; term: number; revision: number }> {
    // lmdb-js runs mdb_env_copy2 on a libuv thread; the copy is one read transaction, i.e. one consistent state.
    const dir = path.dirname(file);
    const tmpData = path.join(dir, MVCC_SUBDIR, 'data.mdb');
    fs.mkdirSync(path.dirname(tmpData), { recursive: true });
    // The env is a directory env (no MDB_NOSUBDIR), so mdb_env_copy2 takes a directory and writes data.mdb in it.
    await this.rdr.dbs.root.backup(path.dirname(tmpData), false);
    const copy = MvccReader.open(dir);
    let meta;
    try {
      meta = copy.meta();
    } finally {
      await copy.close();
    }
    fs.renameSync(tmpData, file);
    fs.rmSync(path.join(dir, MVCC_SUBDIR), { recursive: true, force: true });
    return { index: meta.consistentIndex, term: meta.term, revision: meta.revision };
  }

  private readonly restoredCbs: (() => void)[] = [];

  onRestored(cb: () => void): void {
    this.restoredCbs.push(cb);
  }

  restoreFrom(file: string, expectIndex: number): Promise<void> {
    // A running defragment's copy would miss the installed state: it gives up at its next step.
    this.defrag?.abort();
    return this.swapStore(async () => ({ file, expectIndex }), true);
  }

  async defragment(): Promise<void> {
    if (this.swapping || this.defrag !== null) throw new Error('a snapshot restore or defragment is already running');
    // Online: the copy is made while the store keeps applying and serving; only the final swap pauses both
    // (./defrag-catchup.ts says how the copy catches up).
    const dir = path.join(this.memberDir, DEFRAG_SUBDIR);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const defrag = new DefragCatchUp();
    this.defrag = defrag;
    const oldFile: { handle: fs.promises.FileHandle | null } = { handle: null };
    try {
      // Entries handed before the tee started must be in the copy: let the worker apply them first.
      await this.appliedReaches(this.lastHandedIndex, () => defrag.aborted);
      const copy = await copyMvccEnvInWorker(this.memberDir, dir);
      // The copy was written without fsync: flush it now, on a libuv thread, so the swap's pause does not.
      await fdatasyncFile(copy.file);
      defrag.throwIfAborted();
      await defrag.startShadow(await ApplyClient.start({ ...this.clientOpts, dataDir: dir, commitHistogram: undefined }));
      await defrag.caughtUp(() => this.appliedIndex());
      // Spawned while the old store still serves: the swap's pause then covers opening the store, not the spawn.
      const next = await ApplyClient.prepare(this.clientOpts);
      if (defrag.aborted) await next.cancel();
      defrag.throwIfAborted();
      await this.swapStore(async () => {
        this.defrag = null;
        // While the old worker drains: the shadow drains too (it was handed the same entries; its worker fdatasyncs
        // the file before it reports its store closed), and the file is renamed into place. The old envs keep their
        // own open file until they close, and a crash from here on restarts from the copy, which is synced as far as
        // anything the old store reported synced. File system calls go to libuv threads: the event loop keeps
        // serving reads from the old reader meanwhile.
        await defrag.closeShadow();
        const dir = path.join(this.memberDir, MVCC_SUBDIR);
        // Whoever closes the old file last frees its blocks (hundreds of MiB: long on a busy disk); this handle
        // keeps that off the swap and off the event loop (closed on a libuv thread afterwards).
        oldFile.handle = await fs.promises.open(path.join(dir, 'data.mdb'), 'r');
        await fs.promises.rename(copy.file, path.join(dir, 'data.mdb'));
        await fsyncDirAsync(dir);
        return { file: null };
      }, false, { next, sourceWhileClosing: true, readsDuringSwap: true });
    } finally {
      void oldFile.handle?.close().catch(() => undefined);
      if (this.defrag === defrag) this.defrag = null;
      await defrag.closeShadow();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Resolves once the apply worker applied `index` (or `stop()` is true, or the worker failed). */
  private async appliedReaches(index: number, stop: () => boolean): Promise<void> {
    while (this.appliedIndex() < index && !stop() && this.client.fatal() === null) {
      await new Promise((r) => setTimeout(r, APPLIED_POLL_MS));
    }
  }

  /**
   * Replaces `<memberDir>/mvcc/data.mdb` with the file `source` produces: holds back new entries, lets the worker
   * apply what it was handed and close, runs `source` (the reader's env handle is still open), closes the reader,
   * renames the file into place, reopens both and checks the consistent index. On any failure the old or new store
   * (whatever is in place) is reopened; if reopening fails the state machine reports fatal. `contentChanged`: the
   * new file holds other data (a snapshot), so onRestored callbacks run (watchers resync from the new history).
   */
  private async swapStore(
    source: () => Promise<SwapSource>,
    contentChanged: boolean,
    opts: SwapOptions = {},
  ): Promise<void> {
    if (this.swapping) {
      await opts.next?.cancel();
      throw new Error('a snapshot restore or defragment is already running');
    }
    this.swapping = true;
    let openEnvGate!: () => void;
    this.envGate = new Promise((resolve) => { openEnvGate = resolve; });
    // lmdb-js shares one environment per path in the process: a worker still holding the old one would make the
    // reopen below hand out the old file again.
    while (this.envUsers > 0) await new Promise<void>((resolve) => this.envIdleWaiters.push(resolve));
    this.held = [];
    this.heldBytes = 0;
    let endSwap!: () => void;
    this.swapDone = new Promise((resolve) => { endSwap = resolve; });
    let endReads: (() => void) | null = null;
    const gateReads = (): void => {
      if (endReads === null) this.readsGate = new Promise((resolve) => { endReads = resolve; });
    };
    const openReads = (): void => {
      this.readsGate = null;
      endReads?.();
    };
    if (opts.readsDuringSwap !== true) gateReads();
    let reopenErr: unknown = null;
    try {
      const closing = this.client.close();
      if (opts.sourceWhileClosing !== true) await closing;
      let got: SwapSource | null = null;
      let sourceErr: unknown = null;
      try {
        got = await source();
      } catch (e) {
        sourceErr = e;
      }
      await closing;
      // The old reader still holds the old store's final state: the index the new file must have reached.
      const expectIndex = got?.expectIndex ?? this.rdr.consistentIndex();
      // lmdb-js really closes the (process-shared) environment only when every handle is gone.
      gateReads();
      await this.rdr.close();
      const dir = path.join(this.memberDir, MVCC_SUBDIR);
      try {
        if (got !== null && got.file !== null) {
          fs.renameSync(got.file, path.join(dir, 'data.mdb'));
          fsyncDir(dir);
        }
      } finally {
        // Reopen whatever is there now (the old store if the source or the rename failed); reads resume as soon as
        // the reader is open.
        try {
          // The apply worker opens the store on its thread while this one opens the reader (lmdb-js shares the
          // environment between them and serialises the two opens): the pause covers the longer open, not both.
          const next = opts.next;
          opts.next = undefined;
          const opening = next !== undefined ? next.open() : ApplyClient.start(this.clientOpts);
          let readerErr: unknown = null;
          try {
            this.rdr = MvccReader.open(this.memberDir);
            if (!contentChanged) openReads();
          } catch (e) {
            readerErr = e;
          }
          this.client = await opening;
          if (readerErr !== null) throw readerErr;
          for (const cb of this.appliedCbs) this.client.onApplied(cb);
          for (const cb of this.fatalCbs) this.client.onFatal(cb);
        } catch (e) {
          reopenErr = e;
        }
        fs.rmSync(path.join(this.memberDir, DEFRAG_SUBDIR), { recursive: true, force: true });
      }
      if (reopenErr !== null) throw reopenErr;
      if (sourceErr !== null) throw sourceErr;
      const index = this.rdr.consistentIndex();
      if (got !== null && index !== expectIndex) throw new Error(`swapped store has consistent index ${index}, expected ${expectIndex}`);
    } finally {
      if (opts.next !== undefined) void opts.next.cancel(); // not consumed: the swap failed before reopening
      const held = this.held;
      this.held = null;
      this.heldBytes = 0;
      this.swapDone = null;
      if (reopenErr === null) {
        if (contentChanged) for (const cb of this.restoredCbs) cb();
        for (const b of held) this.client.apply(b);
        const applied = this.appliedIndex();
        for (const cb of this.appliedCbs) cb(applied, [], []);
      } else {
        const message = `reopening the store after a snapshot restore or defragment failed: ${(reopenErr as Error)?.message ?? String(reopenErr)}`;
        for (const cb of this.fatalCbs) cb(message, applyFaultCodeOf(reopenErr));
      }
      openReads();
      endSwap();
      this.swapping = false;
      this.envGate = null;
      openEnvGate();
    }
  }

  hashKVOffThread(revision: number): Promise<HashKVResult> {
    return this.withStoreEnv(() => hashKVOffThread(this.memberDir, revision));
  }

  async withStoreEnv<T>(fn: () => Promise<T>): Promise<T> {
    while (this.envGate !== null) await this.envGate;
    this.envUsers++;
    try {
      return await fn();
    } finally {
      this.envUsers--;
      if (this.envUsers === 0) for (const w of this.envIdleWaiters.splice(0)) w();
    }
  }

  range(req: RangeRequest, id: HeaderIdentity): Uint8Array {
    if (this.readsGate !== null) throw etcdError('Timeout');
    return this.rdr.rangeEncoded(req, id);
  }

  async close(): Promise<void> {
    this.defrag?.abort();
    await this.defrag?.closeShadow();
    await this.client.close();
    if (this.held === null) await this.rdr.close();
  }
}
