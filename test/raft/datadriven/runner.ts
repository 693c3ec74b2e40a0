/**
 * Runs a Raft interaction script against a fresh RaftEnv and compares each command's output with the expected
 * output stored below it. With rewrite set (RAFT_REWRITE=1 in the test), the file is written back with the actual
 * outputs instead: review the diff before committing it, since the expected outputs are the specification.
 */
import * as fs from 'node:fs';
import { RaftEnv } from './interpreter';
import { parseScript, renderScript, type Directive } from './parser';

/** One command whose output differs from the stored expectation. */
export interface Mismatch {
  line: number;
  header: string;
  expected: string;
  actual: string;
}

/** Outcome of running a script: the mismatches (empty when it passes) and the script with actual outputs. */
export interface ScriptResult {
  mismatches: Mismatch[];
  rewritten: string;
  commands: number;
}

/** Runs the script text `source` (named `file` in messages). Throws on a syntax error or an unknown command. */
export function runScript(source: string, file: string): ScriptResult {
  const chunks = parseScript(source, file);
  const env = new RaftEnv();
  const outputs = new Map<Directive, string>();
  const mismatches: Mismatch[] = [];
  for (const c of chunks) {
    if (c.kind !== 'directive') continue;
    const actual = env.handle(c.d);
    outputs.set(c.d, actual);
    if (actual !== c.d.expected) mismatches.push({ line: c.d.line, header: c.d.header, expected: c.d.expected, actual });
  }
  return { mismatches, rewritten: renderScript(chunks, outputs), commands: outputs.size };
}

/** Runs the script at `path`; with rewrite, stores the actual outputs in the file. */
export function runScriptFile(path: string, rewrite: boolean): ScriptResult {
  const res = runScript(fs.readFileSync(path, 'utf8'), path);
  if (rewrite) fs.writeFileSync(path, res.rewritten);
  return res;
}

/** Human-readable report of the first mismatch (with both outputs) and the count of the others. */
export function describeMismatches(file: string, ms: Mismatch[]): string {
  if (ms.length === 0) return '';
  const m = ms[0]!;
  return (
    `${file}:${m.line}: "${m.header}" output differs (${ms.length} command(s) differ; RAFT_REWRITE=1 regenerates)\n` +
    `--- expected\n${m.expected}\n+++ actual\n${m.actual}`
  );
}
