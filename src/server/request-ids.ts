/**
 * Unique request IDs for proposals (etcd: pkg/idutil): a member-derived prefix plus a counter seeded
 * from the clock, so IDs from different members and from successive runs of one member do not collide.
 * Layout (53 bits): [20 bits member prefix][33 bits counter].
 */
const COUNTER_BITS = 33;
const COUNTER_LIMIT = 2 ** COUNTER_BITS;
const PREFIX_LIMIT = 2 ** 20;

/** Generates request IDs; `next()` never returns 0 (0 means "nobody waits"). */
export class RequestIdGenerator {
  private readonly prefix: number;
  private counter: number;

  /** `memberId` any positive integer; `nowMs` seeds the counter (injected for tests). */
  constructor(memberId: number, nowMs: number = Date.now()) {
    this.prefix = (memberId % (PREFIX_LIMIT - 1)) + 1;
    this.counter = Math.floor(nowMs) % COUNTER_LIMIT;
  }

  /** The next request ID, a positive safe integer. */
  next(): number {
    this.counter = (this.counter + 1) % COUNTER_LIMIT;
    return this.prefix * COUNTER_LIMIT + this.counter;
  }
}
