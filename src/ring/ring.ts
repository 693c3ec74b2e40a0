/**
 * Single-producer single-consumer byte ring on a SharedArrayBuffer (see docs/architecture.md, "Rings").
 *
 * Layout of the SharedArrayBuffer (all integers little-endian, i.e. host order on every platform Node supports):
 *
 * ```
 * byte 0    : Int32 magic (RING_MAGIC)
 * byte 4    : Int32 capacityBytes of the data area (power of two, 64 .. 2^30)
 * byte 64   : Int32 head  — free-running byte counter (mod 2^32) of published bytes; written only by the producer
 * byte 128  : Int32 tail  — free-running byte counter (mod 2^32) of released bytes; written only by the consumer
 * byte 192  : Int32 closed flag (1 once the producer called close())
 * byte 196  : Int32 consumer-sleeping flag (1 while the consumer is in waitSync/waitAsync on head)
 * byte 200  : Int32 producer-sleeping flag (1 while the producer is in waitSpaceSync/waitSpaceAsync on tail)
 * byte 256.. : data area, capacityBytes long
 * ```
 * head and tail sit on their own 64-byte cache lines so the two threads do not false-share.
 *
 * Data area: a sequence of records, each starting on an 8-byte boundary: `[u32 len][len bytes][zero..7 pad bytes]`.
 * A record is never split at the end of the data area: when it does not fit contiguously, the producer writes a
 * wrap marker (len = 0xFFFFFFFF) at the current position and the record starts again at data offset 0. A close
 * marker (len = 0xFFFFFFFE) tells the consumer the producer is gone (it also wakes a sleeping consumer).
 *
 * Memory ordering: the producer writes the record bytes with plain stores, then publishes head with Atomics.store
 * (sequentially consistent), then Atomics.notify. The consumer reads head with Atomics.load before reading the
 * bytes, and releases space with Atomics.store on tail only after its callback has returned.
 *
 * Wake-ups: Atomics.notify is only issued when the other side announced it is sleeping (its flag word), so a busy
 * stream pays no notify cost. The sleeper sets its flag (seq-cst) before Atomics.wait/waitAsync compares the
 * word; the waker stores the word (seq-cst) before loading the flag, so one of them always sees the other.
 *
 * Largest record: `maxRecordBytes = capacityBytes / 2 - 8`, which guarantees any admitted record eventually fits
 * once the consumer has drained (a wrap can waste at most the contiguous space left before the end).
 */

import { waitAsync } from './atomics';

/** Magic stamped in word 0 so a wrong SharedArrayBuffer is caught on attach. */
export const RING_MAGIC = 0x52494e47; // 'RING'
/** Bytes of header before the data area. */
export const RING_HEADER_BYTES = 256;
/** Smallest data-area capacity accepted by createRing. */
export const RING_MIN_CAPACITY_BYTES = 64;
/** Largest data-area capacity accepted by createRing (head/tail are 32-bit free-running counters). */
export const RING_MAX_CAPACITY_BYTES = 1 << 30;
/** Default limit on records handed to the callback by one drain() call. */
export const RING_DEFAULT_DRAIN_MAX_RECORDS = 4096;

const W_MAGIC = 0;
const W_CAPACITY = 1;
/** Int32 index of the head word (byte 64). */
export const RING_HEAD_WORD = 16;
/** Int32 index of the tail word (byte 128). */
export const RING_TAIL_WORD = 32;
const W_CLOSED = 48;
const W_CONSUMER_SLEEPING = 49;
const W_PRODUCER_SLEEPING = 50;

const LEN_BYTES = 4;
const WRAP_MARKER = 0xffffffff;
const CLOSE_MARKER = 0xfffffffe;

/** Thrown by RingProducer when a record is larger than `maxRecordBytes` (it could never fit). */
export class RingRecordTooLargeError extends Error {
  override readonly name = 'RingRecordTooLargeError';
  /** @param lenBytes requested record length; @param maxRecordBytes the ring's limit */
  constructor(readonly lenBytes: number, readonly maxRecordBytes: number) {
    super(`ring record of ${lenBytes} bytes exceeds the ring's limit of ${maxRecordBytes} bytes`);
  }
}

/** Thrown when a ring invariant is broken (bad header, impossible counters or record length): memory corruption or
 * two producers/consumers on one ring. Not recoverable. */
export class RingCorruptError extends Error {
  override readonly name = 'RingCorruptError';
}

/** Thrown by RingProducer.tryWrite after close(). */
export class RingClosedError extends Error {
  override readonly name = 'RingClosedError';
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Allocates a ring.
 * @param capacityBytes size of the data area; a power of two in [RING_MIN_CAPACITY_BYTES, RING_MAX_CAPACITY_BYTES].
 * @returns the SharedArrayBuffer to hand to exactly one RingProducer and one RingConsumer (any threads).
 * @throws RangeError when capacityBytes is not an accepted power of two.
 */
export function createRing(capacityBytes: number): SharedArrayBuffer {
  if (
    !Number.isInteger(capacityBytes) ||
    capacityBytes < RING_MIN_CAPACITY_BYTES ||
    capacityBytes > RING_MAX_CAPACITY_BYTES ||
    (capacityBytes & (capacityBytes - 1)) !== 0
  ) {
    throw new RangeError(
      `ring capacity must be a power of two in [${RING_MIN_CAPACITY_BYTES}, ${RING_MAX_CAPACITY_BYTES}], got ${capacityBytes}`,
    );
  }
  const sab = new SharedArrayBuffer(RING_HEADER_BYTES + capacityBytes);
  const hdr = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
  hdr[W_CAPACITY] = capacityBytes;
  Atomics.store(hdr, W_MAGIC, RING_MAGIC);
  return sab;
}

/** Common view over a ring SharedArrayBuffer (header checks, data views). */
abstract class RingSide {
  /** Header words (Int32). */
  protected readonly hdr: Int32Array;
  /** The whole data area; record payloads are at `offset` in this array. */
  readonly data: Uint8Array;
  /** DataView over the same data area, for encoders/decoders (little-endian). */
  readonly view: DataView;
  /** Size of the data area. */
  readonly capacityBytes: number;
  /** Largest record length accepted (capacityBytes / 2 - 8). */
  readonly maxRecordBytes: number;
  protected readonly mask: number;

  constructor(readonly sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < RING_HEADER_BYTES + RING_MIN_CAPACITY_BYTES) {
      throw new RingCorruptError('not a ring SharedArrayBuffer');
    }
    this.hdr = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
    if (Atomics.load(this.hdr, W_MAGIC) !== RING_MAGIC) throw new RingCorruptError('ring magic mismatch');
    const cap = this.hdr[W_CAPACITY]!;
    if (cap <= 0 || (cap & (cap - 1)) !== 0 || RING_HEADER_BYTES + cap !== sab.byteLength) {
      throw new RingCorruptError(`ring capacity word ${cap} does not match buffer of ${sab.byteLength} bytes`);
    }
    this.capacityBytes = cap;
    this.mask = cap - 1;
    this.maxRecordBytes = cap / 2 - 8;
    this.data = new Uint8Array(sab, RING_HEADER_BYTES, cap);
    this.view = new DataView(sab, RING_HEADER_BYTES, cap);
  }

  /** Bytes currently published and not yet released (a racy snapshot; exact only on the calling side's own word). */
  usedBytes(): number {
    return (Atomics.load(this.hdr, RING_HEAD_WORD) - Atomics.load(this.hdr, RING_TAIL_WORD)) >>> 0;
  }

  protected checkUsed(used: number): void {
    if (used > this.capacityBytes) {
      throw new RingCorruptError(`ring counters inconsistent: ${used} bytes used of ${this.capacityBytes}`);
    }
  }
}

/**
 * The writing side of a ring. Exactly one RingProducer per ring (one thread). Never blocks in tryWrite.
 */
export class RingProducer extends RingSide {
  private head: number;
  private lastTail: number;
  private isClosed = false;

  /** @param sab a buffer from createRing. @throws RingCorruptError when it is not a ring. */
  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.head = Atomics.load(this.hdr, RING_HEAD_WORD);
    this.lastTail = Atomics.load(this.hdr, RING_TAIL_WORD);
  }

  /**
   * Reserves `len` contiguous bytes, lets `fill` write them, and publishes the record (Atomics.store + notify).
   * @param len record length in bytes (0 .. maxRecordBytes).
   * @param fill called once, synchronously, with the data area and the offset of the record's first byte; it must
   *   write exactly the bytes [offset, offset+len) and must not throw (if it does, nothing is published).
   * @param defer when true the record is not published yet: it becomes visible with the next publish() or
   *   non-deferred tryWrite (lets a producer batch several records into one publish and one wake-up).
   * @returns false when the ring has not enough free space (back-pressure; call again after waitSpace*).
   * @throws RingRecordTooLargeError if len > maxRecordBytes; RingClosedError after close(); RangeError on a bad len.
   */
  tryWrite(len: number, fill: (buf: Uint8Array, offset: number) => void, defer = false): boolean {
    if (this.isClosed) throw new RingClosedError('ring producer is closed');
    if (!Number.isInteger(len) || len < 0) throw new RangeError(`ring record length must be a non-negative integer, got ${len}`);
    if (len > this.maxRecordBytes) throw new RingRecordTooLargeError(len, this.maxRecordBytes);
    const pos = this.reserve(LEN_BYTES + len);
    if (pos < 0) return false;
    this.view.setUint32(pos, len, true);
    fill(this.data, pos + LEN_BYTES);
    if (!defer) this.publish();
    return true;
  }

  /**
   * Copies `bytes` into the ring as one record.
   * @returns false when full (back-pressure). @throws as tryWrite.
   */
  tryWriteBytes(bytes: Uint8Array, defer = false): boolean {
    return this.tryWrite(bytes.length, (buf, off) => buf.set(bytes, off), defer);
  }

  /**
   * Marks the ring closed and writes a close marker (which wakes a consumer sleeping in wait*). Idempotent.
   * If the ring is full the marker is skipped: the consumer then still sees the closed flag once it has drained.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    Atomics.store(this.hdr, W_CLOSED, 1);
    const pos = this.reserve(LEN_BYTES);
    if (pos >= 0) {
      this.view.setUint32(pos, CLOSE_MARKER, true);
    }
    this.publish();
    Atomics.notify(this.hdr, RING_HEAD_WORD);
  }

  /**
   * Blocks the calling thread (worker threads only) until the consumer releases space, or timeoutMs elapses.
   * Uses the tail value seen by the last failed tryWrite, so a release that happened since is never missed.
   * @returns the Atomics.wait result ('ok' | 'not-equal' | 'timed-out').
   */
  waitSpaceSync(timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
    this.publish();
    Atomics.store(this.hdr, W_PRODUCER_SLEEPING, 1);
    const r = Atomics.wait(this.hdr, RING_TAIL_WORD, this.lastTail | 0, timeoutMs);
    Atomics.store(this.hdr, W_PRODUCER_SLEEPING, 0);
    return r;
  }

  /**
   * Resolves when the consumer releases space (or after timeoutMs, default: no timeout). Never blocks the event
   * loop (Atomics.waitAsync). Resolves immediately when space was released since the last failed tryWrite.
   */
  waitSpaceAsync(timeoutMs?: number): Promise<'ok' | 'not-equal' | 'timed-out'> {
    this.publish();
    Atomics.store(this.hdr, W_PRODUCER_SLEEPING, 1);
    return waitAsync(this.hdr, RING_TAIL_WORD, this.lastTail | 0, timeoutMs).finally(() =>
      Atomics.store(this.hdr, W_PRODUCER_SLEEPING, 0),
    );
  }

  /** Returns the data-area offset of the record's length word, or -1 when it does not fit now. */
  private reserve(totalUnaligned: number): number {
    const total = align8(totalUnaligned);
    const tail = Atomics.load(this.hdr, RING_TAIL_WORD);
    this.lastTail = tail;
    const used = (this.head - tail) >>> 0;
    this.checkUsed(used);
    const free = this.capacityBytes - used;
    let pos = this.head & this.mask;
    const contiguous = this.capacityBytes - pos;
    if (total <= contiguous) {
      if (total > free) return -1;
      this.head = (this.head + total) | 0;
      return pos;
    }
    // Does not fit before the end: pad to the end with a wrap marker and start at 0.
    if (contiguous + total > free) return -1;
    this.view.setUint32(pos, WRAP_MARKER, true);
    pos = 0;
    this.head = (this.head + contiguous + total) | 0;
    return pos;
  }

  /** Publishes records written with `defer` (no-op when there are none) and wakes a sleeping consumer. */
  publish(): void {
    if (Atomics.load(this.hdr, RING_HEAD_WORD) === this.head) return;
    Atomics.store(this.hdr, RING_HEAD_WORD, this.head);
    if (Atomics.load(this.hdr, W_CONSUMER_SLEEPING) !== 0) Atomics.notify(this.hdr, RING_HEAD_WORD);
  }

  /**
   * Publishes records written with `defer` without waking a sleeping consumer: it sees them when something else
   * wakes it (the next publish, its own wait timeout) or right away if it is not asleep. For records nobody waits
   * on, where a wake of a sleeping thread (a futex call on both sides) would cost more than the record is worth.
   */
  publishQuiet(): void {
    Atomics.store(this.hdr, RING_HEAD_WORD, this.head);
  }
}

/**
 * The reading side of a ring. Exactly one RingConsumer per ring (one thread). The consumer frees space.
 */
export class RingConsumer extends RingSide {
  private tail: number;
  private sawClose = false;

  /** @param sab a buffer from createRing. @throws RingCorruptError when it is not a ring. */
  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.tail = Atomics.load(this.hdr, RING_TAIL_WORD);
  }

  /**
   * Hands every record published so far (up to maxRecords) to onRecord, then releases their space (Atomics.store
   * on tail + notify). Reads head once, so one call is bounded by the ring's capacity.
   * @param onRecord called synchronously per record with the data area, the record's offset and its length; the
   *   bytes are valid only during the call. If it throws, records before it are released, the throwing record is
   *   not (it will be delivered again), and the error propagates.
   * @param maxRecords named limit on records per call (default RING_DEFAULT_DRAIN_MAX_RECORDS).
   * @returns number of records delivered.
   * @throws RingCorruptError when a length word is impossible.
   */
  drain(
    onRecord: (buf: Uint8Array, offset: number, len: number) => void,
    maxRecords: number = RING_DEFAULT_DRAIN_MAX_RECORDS,
  ): number {
    const head = Atomics.load(this.hdr, RING_HEAD_WORD);
    const start = this.tail;
    this.checkUsed((head - start) >>> 0);
    let tail = start;
    let n = 0;
    try {
      while (tail !== head && n < maxRecords) {
        const pos = tail & this.mask;
        const len = this.view.getUint32(pos, true);
        if (len === WRAP_MARKER) {
          tail = (tail + (this.capacityBytes - pos)) | 0;
          continue;
        }
        if (len === CLOSE_MARKER) {
          this.sawClose = true;
          tail = (tail + 8) | 0;
          continue;
        }
        const total = align8(LEN_BYTES + len);
        if (len > this.maxRecordBytes || pos + total > this.capacityBytes || total > ((head - tail) >>> 0)) {
          throw new RingCorruptError(`ring record length ${len} at offset ${pos} is impossible`);
        }
        onRecord(this.data, pos + LEN_BYTES, len);
        tail = (tail + total) | 0;
        n++;
      }
      // Skip trailing markers so the producer gets the space back now.
      while (tail !== head) {
        const pos = tail & this.mask;
        const len = this.view.getUint32(pos, true);
        if (len === WRAP_MARKER) tail = (tail + (this.capacityBytes - pos)) | 0;
        else if (len === CLOSE_MARKER) {
          this.sawClose = true;
          tail = (tail + 8) | 0;
        } else break;
      }
    } finally {
      if (tail !== start) {
        this.tail = tail;
        Atomics.store(this.hdr, RING_TAIL_WORD, tail);
        if (Atomics.load(this.hdr, W_PRODUCER_SLEEPING) !== 0) Atomics.notify(this.hdr, RING_TAIL_WORD);
      }
    }
    return n;
  }

  /** True when there is nothing left to read (racy: the producer may publish right after). */
  isEmpty(): boolean {
    return Atomics.load(this.hdr, RING_HEAD_WORD) === this.tail;
  }

  /** True once the producer closed the ring and every record before the close has been drained. */
  get closed(): boolean {
    return (this.sawClose || Atomics.load(this.hdr, W_CLOSED) === 1) && this.isEmpty();
  }

  /**
   * Blocks (worker threads only: Atomics.wait) while the ring is empty, up to timeoutMs.
   * @returns 'not-equal' when records were already available, 'ok' when woken, 'timed-out' otherwise.
   */
  waitSync(timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
    if (Atomics.load(this.hdr, W_CLOSED) === 1 && this.isEmpty()) return 'not-equal';
    Atomics.store(this.hdr, W_CONSUMER_SLEEPING, 1);
    const r = Atomics.wait(this.hdr, RING_HEAD_WORD, this.tail, timeoutMs);
    Atomics.store(this.hdr, W_CONSUMER_SLEEPING, 0);
    return r;
  }

  /**
   * Wakes a waitAsync / waitSync in progress as if records had arrived; the woken side re-checks why it woke (e.g.
   * the producer's thread exited). Racing the wait against a long-lived promise instead would leave a reaction on
   * that promise per wait, kept until it settles (hundreds of bytes per wake, for the member's lifetime).
   */
  interrupt(): void {
    Atomics.notify(this.hdr, RING_HEAD_WORD);
  }

  /**
   * Resolves once the ring is non-empty (immediately if it already is), or after timeoutMs (default none).
   * For the main thread: Atomics.waitAsync, never blocks the event loop. Note a pending waitAsync does not keep a
   * Node process alive by itself.
   */
  waitAsync(timeoutMs?: number): Promise<void> {
    if (Atomics.load(this.hdr, W_CLOSED) === 1 && this.isEmpty()) return Promise.resolve();
    Atomics.store(this.hdr, W_CONSUMER_SLEEPING, 1);
    return waitAsync(this.hdr, RING_HEAD_WORD, this.tail, timeoutMs).then(() => {
      Atomics.store(this.hdr, W_CONSUMER_SLEEPING, 0);
    });
  }
}
