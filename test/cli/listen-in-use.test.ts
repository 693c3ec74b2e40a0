/**
 * A member whose client or peer port is taken exits 1 with one fatal log line naming the address (etcd: "bind:
 * address already in use"), without a stack trace from a half-started Raft loop, and leaves no process behind.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePort } from '../helpers/ports';
import { etceteraCli } from '../helpers/servers';

const blockers: net.Server[] = [];
after(() => { for (const b of blockers) b.close(); });

function occupy(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => { blockers.push(s); resolve(); });
  });
}

for (const which of ['client', 'peer'] as const) {
  test(`${which} port already in use → exit 1, one fatal line naming the address, no uncaught error`, { timeout: 60_000 }, async () => {
    const [client, peer] = [await freePort(), await freePort()];
    const taken = which === 'client' ? client : peer;
    await occupy(taken);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-inuse-'));
    try {
      const r = spawnSync(process.execPath, [etceteraCli(), '--name=m1', `--data-dir=${path.join(dataDir, 'd')}`,
        `--listen-client-urls=http://127.0.0.1:${client}`, `--advertise-client-urls=http://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=m1=http://127.0.0.1:${peer}`], { encoding: 'utf8', timeout: 45_000 });
      const out = `${r.stdout}${r.stderr}`;
      assert.equal(r.signal, null, `killed by the timeout (wedged?):\n${out}`);
      assert.equal(r.status, 1, out);
      const fatal = out.split('\n').filter((l) => l.includes('"level":"fatal"'));
      assert.equal(fatal.length, 1, out);
      assert.match(fatal[0]!, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${taken}`));
      assert.doesNotMatch(out, /^\s+at /m, `no stack trace expected:\n${out}`);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
