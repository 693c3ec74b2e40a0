/** Test helper: runs the compiled `etcetera-bench` as a child process and collects its exit status and output. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

/** Path of the compiled bench CLI. */
export const CLI = path.join(__dirname, '..', '..', 'src', 'bench', 'cli.js');

/** Runs `etcetera-bench ARGS`; resolves when it exits (never rejects). */
export function bench(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
