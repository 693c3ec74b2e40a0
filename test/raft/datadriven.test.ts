/**
 * Raft interaction scripts (test/raft/testdata/*.txt, format in test/raft/testdata/README.md) run against the real
 * core (RawNode + MemoryStorage). RAFT_REWRITE=1 regenerates the expected outputs in place.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeMismatches, runScript, runScriptFile } from './datadriven/runner';
import { ScriptSyntaxError, parseCommandLine, parseScript, renderScript } from './datadriven/parser';
import { ScriptCommandError, parseConfChange } from './datadriven/interpreter';

// Compiled to dist/test/raft; the scripts stay in the source tree.
const DATA = path.join(__dirname, '..', '..', '..', 'test', 'raft', 'testdata');
const REWRITE = process.env.RAFT_REWRITE === '1';
const scripts = fs.readdirSync(DATA).filter((f) => f.endsWith('.txt')).sort();

test('the script directory holds the interaction scripts', () => {
  assert.ok(scripts.length >= 8, `found ${scripts.join(', ')}`);
});

for (const f of scripts) {
  test(`raft script ${f}`, () => {
    const res = runScriptFile(path.join(DATA, f), REWRITE);
    assert.ok(res.commands > 0, 'script has no commands');
    if (!REWRITE) assert.equal(res.mismatches.length, 0, describeMismatches(f, res.mismatches));
  });
}

test('parser: arguments, lists, input lines and verbatim comments', () => {
  assert.deepEqual(parseCommandLine('add-nodes 3 voters=(1, 2,3) prevote=true'), {
    cmd: 'add-nodes',
    args: [
      { key: '3', vals: [] },
      { key: 'voters', vals: ['1', '2', '3'] },
      { key: 'prevote', vals: ['true'] },
    ],
  });
  const src = '# c\n\nstatus 1\nin\n----\nold\nout\n\n# tail\n';
  const chunks = parseScript(src);
  assert.equal(chunks.length, 3);
  const d = chunks[1]!;
  assert.ok(d.kind === 'directive');
  assert.deepEqual(d.d.input, ['in']);
  assert.equal(d.d.expected, 'old\nout');
  assert.equal(d.d.line, 3);
  assert.equal(renderScript(chunks, new Map()), src, 'rendering without new outputs gives the file back');
  assert.equal(renderScript(chunks, new Map([[d.d, 'new']])), '# c\n\nstatus 1\nin\n----\nnew\n\n# tail\n');
});

test('parser: a command without ---- and unbalanced parentheses are syntax errors with the line', () => {
  assert.throws(() => parseScript('status 1\n\n'), (e: unknown) => e instanceof ScriptSyntaxError && /:1:/.test((e as Error).message));
  assert.throws(() => parseCommandLine('add-nodes voters=(1,2'), ScriptSyntaxError);
});

test('a wrong expected output is reported with the line and both outputs; rewrite fixes it', () => {
  const src = 'add-nodes 1 voters=(1)\n----\nbogus\n\nstatus 1\n----\nbogus too\n';
  const res = runScript(src, 'x.txt');
  assert.equal(res.mismatches.length, 2);
  assert.equal(res.mismatches[0]!.line, 1);
  assert.match(describeMismatches('x.txt', res.mismatches), /x\.txt:1: "add-nodes 1 voters=\(1\)" output differs/);
  const again = runScript(res.rewritten, 'x.txt');
  assert.equal(again.mismatches.length, 0);
  assert.match(res.rewritten, /1: StateFollower Term:1/);
});

test('rewrite mode writes the actual outputs into the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftdd-'));
  try {
    const file = path.join(dir, 's.txt');
    fs.writeFileSync(file, 'add-nodes 1 voters=(1)\n----\n\ncampaign 1\n----\nstale\n');
    runScriptFile(file, true);
    const res = runScriptFile(file, false);
    assert.equal(res.mismatches.length, 0);
    assert.match(fs.readFileSync(file, 'utf8'), /became leader at term 2/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown commands and bad conf changes are script errors, not silent passes', () => {
  assert.throws(() => runScript('frobnicate 1\n----\n', 'x.txt'), ScriptCommandError);
  assert.throws(() => parseConfChange('x4'), ScriptCommandError);
  assert.deepEqual(parseConfChange('l7'), { type: 'addLearner', nodeId: 7 });
});
