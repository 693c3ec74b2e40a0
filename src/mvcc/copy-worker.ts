/**
 * Child-process entry of an online defragment's copy (./copy.ts copyMvccEnvInChild; argv[2] = JSON
 * {srcDataDir, destDataDir}): opens the member's MVCC environment (LMDB shares it between processes through its
 * lock file), copies one read transaction's state into the destination, closes both and sends {result} or {error}.
 */
import { openMvccEnv } from './env';
import { copyMvccSnapshotSync, type SnapshotCopy } from './copy';

async function main(): Promise<void> {
  const d = JSON.parse(process.argv[2] ?? '{}') as { srcDataDir: string; destDataDir: string };
  let dbs: ReturnType<typeof openMvccEnv> | null = null;
  let msg: { result?: SnapshotCopy; error?: string };
  try {
    dbs = openMvccEnv(d.srcDataDir);
    dbs.root.resetReadTxn();
    msg = { result: copyMvccSnapshotSync(dbs, d.destDataDir) };
  } catch (e) {
    msg = { error: (e as Error)?.stack ?? String(e) };
  }
  await dbs?.root.close();
  await new Promise<void>((resolve) => process.send!(msg, () => resolve()));
  process.disconnect?.();
}

if (require.main === module && process.send !== undefined) void main();
