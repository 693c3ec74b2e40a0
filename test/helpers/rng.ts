/** The seeded random source of the generated (differential) tests: replayable from one 32-bit seed. */
import { seededRandom } from '../../src/raft';

/** Seeded PRNG (the Raft simulation's generator) with the few draws the test generators need. */
export class Rng {
  private readonly rand: () => number;
  constructor(seed: number) { this.rand = seededRandom(seed); }
  /** Uniform in [0, 1). */
  next(): number { return this.rand(); }
  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }
  /** Integer in [lo, hi]. */
  between(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  /** True with probability p. */
  chance(p: number): boolean { return this.next() < p; }
  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
}
