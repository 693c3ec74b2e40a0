/** The bench CLI's usage errors: one line on stderr, exit status 2 (run as a child process). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const CLI = path.join(__dirname, '..', '..', 'src', 'bench', 'cli.js');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // Port 1 is closed: if a bad command line were accepted, the run would fail with status 1, not 2.
  const r = spawnSync(process.execPath, [CLI, '--endpoints', '127.0.0.1:1', '--dial-timeout', '1s', ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cases: Array<[string[], RegExp]> = [
  [['put', '--bogus'], /Unknown argument: bogus/],
  [['put', '--total', 'abc'], /"abc" for "--total"/],
  [['put', '--total=-5'], /"-5" for "--total"/],
  [['--conns', '1.5', 'put'], /"1.5" for "--conns"/],
  [['--dial-timeout', '5 parsecs', 'put'], /--dial-timeout/],
  [['range'], /Not enough non-option arguments/],
  [['range', 'a', 'b', 'c'], /Unknown argument: c/],
  [['range', 'foo', '--consistency', 'x'], /--consistency/],
  [['frobnicate'], /Unknown argument: frobnicate/],
  [[], /a command is required/],
  [['put', '--key-size', '1', '--key-space-size', '1000'], /--key-space-size=1000/],
  [['txn-put', '--txn-ops', '3', '--key-space-size', '2'], /--txn-ops no larger than --key-space-size/],
  [['--clients', '0', 'put'], /positive --clients/],
];

for (const [args, re] of cases) {
  test(`bad command line → exit 2: ${args.join(' ') || '(none)'}`, () => {
    const r = run(args);
    assert.equal(r.status, 2, `stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
    assert.match(lines[0], /^etcetera-bench: /);
    assert.match(lines[0], re);
    assert.equal(r.stdout, '');
  });
}

test('--help exits 0 and lists the commands', () => {
  const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const c of ['put', 'range', 'txn-put', 'watch', 'lease-keepalive', '--endpoints', '--target-leader']) assert.ok(r.stdout.includes(c), c);
});

test('an unreachable endpoint is a setup failure: exit 1 with a message', () => {
  const r = run(['put', '--total', '5']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /dial 127\.0\.0\.1:1/);
});
