/**
 * A small seeded pseudo-random source (mulberry32) for what must be random yet replayable: Raft's randomized
 * election timeouts (the core takes `rand` in its config and never calls Math.random), and seeded simulations
 * and differential tests. Not for anything secret.
 */

/** Returns a function yielding uniform numbers in [0, 1) from a 32-bit `seed`; the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
