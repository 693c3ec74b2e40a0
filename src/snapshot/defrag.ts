/**
 * Offline defragmentation of a stopped member (etcd 3.4: `etcdctl defrag --data-dir`; etcdutl defrag): the LMDB
 * environment under `<data-dir>/member/mvcc` is copied record by record into a fresh file (src/mvcc/copy.ts, which
 * holds only the pages in use) and the copy replaces data.mdb by an atomic rename. The member must not be running.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MVCC_SUBDIR, openMvccEnv } from '../mvcc/env';
import { copyMvccEnv } from '../mvcc/copy';

/**
 * Defragments `<dataDir>/member/mvcc`. Returns the file size before and after (bytes).
 * @throws I/O errors (missing data dir, full disk); the original file is untouched unless the rename happened.
 */
export async function defragDataDir(dataDir: string): Promise<{ beforeBytes: number; afterBytes: number }> {
  const memberDir = path.join(dataDir, 'member');
  const dir = path.join(memberDir, MVCC_SUBDIR);
  const data = path.join(dir, 'data.mdb');
  const beforeBytes = fs.statSync(data).size;
  const tmpDir = path.join(memberDir, `${MVCC_SUBDIR}.defrag`);
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir, { recursive: true });
  const dbs = openMvccEnv(memberDir);
  let copy: string;
  try {
    copy = (await copyMvccEnv(dbs, tmpDir)).file;
  } finally {
    await dbs.root.close();
  }
  const fd = fs.openSync(copy, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(copy, data);
  fs.rmSync(tmpDir, { recursive: true, force: true });
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
  return { beforeBytes, afterBytes: fs.statSync(data).size };
}
