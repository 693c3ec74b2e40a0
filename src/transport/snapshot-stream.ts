/** The receiving side of a snapshot connection: received chunks as an async iterable, with socket backpressure. */
import * as net from 'node:net';
import { SNAPSHOT_RECV_BUFFER_MAX_BYTES } from './context';


/**
 * Single-consumer async iterable over received snapshot chunks, with backpressure on the socket: pauses reading
 * once {@link SNAPSHOT_RECV_BUFFER_MAX_BYTES} are buffered, resumes below half of that.
 */
export class SnapshotChunkStream implements AsyncIterable<Uint8Array> {
  private q: Buffer[] = [];
  private qBytes = 0;
  private ended = false;
  private err: Error | undefined;
  private waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void } | undefined;
  private paused = false;
  private abandoned = false;

  constructor(private readonly sock: net.Socket) {}

  push(b: Buffer): void {
    if (this.abandoned || this.ended || this.err) return;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: b, done: false });
      return;
    }
    this.q.push(b);
    this.qBytes += b.length;
    if (!this.paused && this.qBytes > SNAPSHOT_RECV_BUFFER_MAX_BYTES) {
      this.paused = true;
      this.sock.pause();
    }
  }

  end(): void {
    if (this.err) return;
    this.ended = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve({ value: undefined, done: true });
  }

  fail(e: Error): void {
    if (this.ended || this.err) return;
    this.err = e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  /** Stop buffering: the consumer is done; remaining bytes are read and discarded. */
  abandon(): void {
    this.abandoned = true;
    this.q = [];
    this.qBytes = 0;
    if (this.paused) {
      this.paused = false;
      this.sock.resume();
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: (): Promise<IteratorResult<Uint8Array>> => {
        if (this.q.length > 0) {
          const b = this.q.shift() as Buffer;
          this.qBytes -= b.length;
          if (this.paused && this.qBytes <= SNAPSHOT_RECV_BUFFER_MAX_BYTES / 2) {
            this.paused = false;
            this.sock.resume();
          }
          return Promise.resolve({ value: b, done: false });
        }
        if (this.err) return Promise.reject(this.err);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: (): Promise<IteratorResult<Uint8Array>> => {
        this.abandon();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

