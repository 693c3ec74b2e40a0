/**
 * Invariants at the two ends of the worker rings (TigerBeetle style assertions): what one thread wrote and the other
 * reads must agree on record sizes, entry order and index contiguity. A failed invariant is a bug or memory
 * corruption, never a user error or an overload: it throws {@link InvariantError}, which stops the thread that found
 * it (the apply worker reports it as ApplyFaultCode.BadRecord; on the main thread it surfaces as an apply fault).
 * Cheap by design (integer compares): they run on every record.
 */

/** A broken cross-thread invariant (a bug or corruption). */
export class InvariantError extends Error {
  override readonly name: string = 'InvariantError';
}

/**
 * Throws {@link InvariantError} (or `errorType`, a subclass naming the module, e.g. the Raft core's) with `what` (a
 * string, or a function building it only on failure) unless `cond`.
 * @throws InvariantError
 */
export function invariant(cond: unknown, what: string | (() => string), errorType: new (message: string) => InvariantError = InvariantError): asserts cond {
  if (!cond) throw new errorType(typeof what === 'string' ? what : what());
}
