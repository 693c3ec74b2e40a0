/** Test helpers for waiting on conditions (bounded polling) instead of fixed sleeps. */

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every `intervalMs` until it answers true or `ms` passed (checked at least once). Resolves with
 * whether it held; never rejects unless `check` does.
 */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + ms;
  do {
    if (await check()) return true;
    await sleep(intervalMs);
  } while (Date.now() < deadline);
  return false;
}
