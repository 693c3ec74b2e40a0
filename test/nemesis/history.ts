/**
 * The recorded history of a nemesis run: invoke / complete events of client operations, in the order this
 * (single-threaded) test process saw them, plus the nemesis's own fault events. Event sequence numbers are the
 * real-time order the linearizability checker uses (an op invoked after another completed has a larger number).
 */
import * as fs from 'node:fs';
import type { Operation, OpKind, Outcome, Value } from './linearizability';

/** One line of the history file. */
export type HistoryEvent =
  | { seq: number; ms: number; type: 'invoke'; process: number; op: OpKind; key: string; value?: Value; expected?: Value; member: string }
  | { seq: number; ms: number; type: Outcome; process: number; op: OpKind; key: string; output?: { value?: Value; succeeded?: boolean }; revision?: number; error?: string }
  | { seq: number; ms: number; type: 'nemesis'; fault: string; detail: string };

/** An invoked operation waiting for its completion. */
export interface Pending { process: number; op: OpKind; key: string; value?: Value; expected?: Value; member: string }

export class History {
  readonly events: HistoryEvent[] = [];
  private seq = 0;
  private readonly t0 = Date.now();
  private readonly pending = new Map<number, Pending>();

  /** Records the start of an operation by `p.process` (which must have no operation pending). */
  invoke(p: Pending): void {
    if (this.pending.has(p.process)) throw new Error(`process ${p.process} already has an operation pending`);
    this.pending.set(p.process, p);
    this.events.push({ seq: ++this.seq, ms: Date.now() - this.t0, type: 'invoke', ...p });
  }

  /** Records the completion of `process`'s pending operation. */
  complete(process: number, outcome: Outcome, r: { output?: { value?: Value; succeeded?: boolean }; revision?: number; error?: string } = {}): void {
    const p = this.pending.get(process);
    if (!p) throw new Error(`process ${process} has no operation pending`);
    this.pending.delete(process);
    this.events.push({ seq: ++this.seq, ms: Date.now() - this.t0, type: outcome, process, op: p.op, key: p.key, ...r });
  }

  /** Records a fault injected or healed. */
  nemesis(fault: string, detail: string): void {
    this.events.push({ seq: ++this.seq, ms: Date.now() - this.t0, type: 'nemesis', fault, detail });
  }

  /** Writes the history as JSON lines. */
  write(file: string): void {
    fs.writeFileSync(file, this.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  }
}

/** Completed operations with the revision of their response (for the durability and revision checks). */
export interface RecordedOperation extends Operation { revision?: number; member: string }

/**
 * Pairs invoke and completion events into operations. An invocation never completed (the run ended first) is
 * unknown, like a timeout.
 */
export function toOperations(events: readonly HistoryEvent[]): RecordedOperation[] {
  const open = new Map<number, RecordedOperation>();
  const out: RecordedOperation[] = [];
  let id = 0;
  for (const e of events) {
    if (e.type === 'nemesis') continue;
    if (e.type === 'invoke') {
      const op: RecordedOperation = {
        id: ++id, process: e.process, key: e.key, kind: e.op, value: e.value, expected: e.expected,
        outcome: 'unknown', call: e.seq, ret: Infinity, member: e.member,
      };
      open.set(e.process, op);
      out.push(op);
      continue;
    }
    const op = open.get(e.process);
    if (!op) throw new Error(`completion without invocation: ${JSON.stringify(e)}`);
    open.delete(e.process);
    op.outcome = e.type;
    op.output = e.output;
    op.revision = e.revision;
    op.ret = e.type === 'unknown' ? Infinity : e.seq;
  }
  return out;
}
