/**
 * Pending linearizable reads on the leader (etcd raft: read_only.go, ReadOnlySafe). Each request records the
 * commit index at arrival; it is answered once a heartbeat round carrying its context (or a later one) has been
 * acknowledged by a majority, proving the leader was still leader when the read arrived (Raft thesis §6.4).
 */
import { Message, bytesKey, invariant } from './types';

/** One pending read. */
export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Set<number>;
}

/** Max pending reads per leader; further reads are dropped (the client times out). */
export const MAX_PENDING_READS = 65536;

/** Queue of pending ReadIndex requests on the leader, in arrival order (bounded by MAX_PENDING_READS). */
export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /**
   * Registers read request m (its context must be non-empty and unique among pending ones) at commit index
   * `index`. Returns false if the queue is full or the context is already pending.
   */
  addRequest(index: number, m: Message): boolean {
    const key = bytesKey(m.context);
    if (this.pending.has(key)) return false;
    if (this.queue.length >= MAX_PENDING_READS) return false;
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records that `id` acknowledged the heartbeat carrying ctx; returns the ack set (empty if unknown ctx). */
  recvAck(id: number, ctx: Uint8Array | undefined): Set<number> {
    const rs = this.pending.get(bytesKey(ctx));
    if (!rs) return new Set();
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * The read with context ctx has been confirmed by a quorum: it and every read queued before it are released
   * (in order) and returned.
   */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const key = bytesKey(ctx);
    const pos = this.queue.indexOf(key);
    if (pos < 0) return [];
    const keys = this.queue.splice(0, pos + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of keys) {
      const rs = this.pending.get(k);
      invariant(rs !== undefined, 'cannot find corresponding read state from pending map');
      this.pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  /** Context of the newest pending read, if any (sent with every heartbeat). */
  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1])?.req.context;
  }

  /** Number of pending reads. */
  size(): number {
    return this.queue.length;
  }
}
