/**
 * close() leaves no handles: a child process that used two transports (streams, pings, redial timers, snapshots)
 * must exit on its own right after close().
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';

test('after close() the process exits by itself (no sockets, servers or timers left)', async () => {
  const fixture = path.join(__dirname, 'fixtures', 'exit-fixture.js');
  const child = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const result = await new Promise<{ code: number | null; timedOut: boolean }>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ code: null, timedOut: true });
    }, 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut: false });
    });
  });
  assert.ok(out.includes('closed rejected'), `fixture reached close() with a snapshot in flight: stdout=${out} stderr=${err}`);
  assert.equal(result.timedOut, false, `process did not exit after close(): stdout=${out}`);
  assert.equal(result.code, 0, err);
});
