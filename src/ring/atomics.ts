/**
 * Typed access to Atomics.waitAsync (ES2024; available in Node 20 but absent from the project's `lib: ES2022`
 * typings). Never blocks: resolves when the word is notified or changes, or after timeoutMs.
 *
 * Event-loop liveness: a bare pending Atomics.waitAsync does not keep a Node process alive. This wrapper keeps the
 * loop alive for bounded waits (timeoutMs given) with a ref'd timer; unbounded waits do not hold the process.
 */

/** Result of Atomics.waitAsync: synchronous when the value already differs (or timeout 0). */
export type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

type WaitAsyncFn = {
  (typedArray: Int32Array, index: number, value: number, timeoutMs?: number): WaitAsyncResult;
  (typedArray: BigInt64Array, index: number, value: bigint, timeoutMs?: number): WaitAsyncResult;
};

const waitAsyncFn: WaitAsyncFn | undefined = (Atomics as unknown as { waitAsync?: WaitAsyncFn }).waitAsync;

/**
 * Atomics.waitAsync(typedArray, index, value, timeoutMs) as a Promise.
 * @throws Error when the runtime lacks Atomics.waitAsync (Node < 16).
 */
export function waitAsync(
  typedArray: Int32Array | BigInt64Array,
  index: number,
  value: number | bigint,
  timeoutMs?: number,
): Promise<'ok' | 'not-equal' | 'timed-out'> {
  if (!waitAsyncFn) throw new Error('Atomics.waitAsync is not available in this runtime');
  const r = (waitAsyncFn as (a: Int32Array | BigInt64Array, i: number, v: number | bigint, t?: number) => WaitAsyncResult).call(
    Atomics,
    typedArray,
    index,
    value,
    timeoutMs,
  );
  if (!r.async) return Promise.resolve(r.value);
  if (timeoutMs === undefined || !Number.isFinite(timeoutMs)) return r.value;
  // A pending Atomics.waitAsync does not keep Node's event loop alive, even with a timeout (V8's timeout task
  // rides on an unref'd platform timer): hold a ref'd interval until the wait settles, so a bounded wait always
  // completes. V8 guarantees settlement at the latest at the timeout.
  const keepAlive = setInterval(() => {}, 1 << 30);
  return r.value.finally(() => clearInterval(keepAlive));
}
