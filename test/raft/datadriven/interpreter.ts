/**
 * Interpreter of the Raft interaction scripts: drives real RawNodes over MemoryStorage the way a host does
 * (persist a Ready's snapshot, entries and HardState, apply committed entries, advance, then send its messages),
 * with the message network held in per-recipient queues so scripts decide what is delivered, dropped or cut.
 * Commands are listed in test/raft/testdata/README.md. Deterministic: election timeouts are not randomized
 * (rand() = 0, so the timeout is exactly electionTick) and every loop runs in node-ID order.
 */
import { EntryType, ErrProposalDropped, MemoryStorage, RawNode } from '../../../src/raft';
import type { ConfChange, ConfState, Message, RaftConfig, Ready } from '../../../src/raft';
import type { Arg, Directive } from './parser';
import { formatConfState, formatEntry, formatMessage, formatReady, formatSnapshot, formatStatus } from './format';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Rounds after which `stabilize` gives up (a livelock in the core or the script). */
export const MAX_STABILIZE_ROUNDS = 1000;

type Level = 'debug' | 'info' | 'warn';
const LEVELS: Record<string, number> = { debug: 0, info: 1, warn: 2, none: 3 };
/** Commands whose output is shown even at log-level none. */
const INSPECT = new Set(['status', 'raft-log', 'kv']);

/** A command the script got wrong (unknown command, bad argument). */
export class ScriptCommandError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'ScriptCommandError';
  }
}

/** One simulated member: the Raft node, its durable storage and its toy state machine (applied entry data). */
interface Member {
  id: number;
  node: RawNode;
  storage: MemoryStorage;
  cfg: Partial<RaftConfig>;
  /** Membership as of the applied index (what a snapshot taken now records). */
  confState: ConfState;
  /** The state machine: data of every applied normal entry, in order. */
  kv: string[];
}

/** ConfChange entry data: `v4` adds voter 4 (or promotes learner 4), `l4` adds learner 4, `r4` removes 4. */
export function parseConfChange(text: string): ConfChange {
  const m = /^([vlr])(\d+)$/.exec(text.trim());
  if (!m) throw new ScriptCommandError(`bad conf change "${text}" (want v<id>, l<id> or r<id>)`);
  const type = m[1] === 'v' ? 'addNode' : m[1] === 'l' ? 'addLearner' : 'removeNode';
  return { type, nodeId: Number(m[2]) };
}

/** State of one script run. */
export class RaftEnv {
  private readonly members = new Map<number, Member>();
  /** Messages sent and not yet delivered, by recipient. */
  private readonly queues = new Map<number, Message[]>();
  /** "from-to" pairs whose messages are dropped on delivery. */
  private readonly cut = new Set<string>();
  private level = LEVELS.info!;
  private out: string[] = [];
  /** Log lines emitted while handling a node's Ready or messages are indented under its `>` header. */
  private indent = '';

  /** Runs one directive and returns its output ('ok' when it printed nothing). */
  handle(d: Directive): string {
    this.out = [];
    try {
      this.dispatch(d);
    } catch (e) {
      if (e instanceof ScriptCommandError) throw e;
      if (e instanceof ErrProposalDropped) this.out.push(`error: ${e.message}`);
      else throw e;
    }
    // At log-level none, setup commands stay quiet; inspection commands always print.
    if (this.level === LEVELS.none && !INSPECT.has(d.cmd)) return 'ok';
    return this.out.length === 0 ? 'ok' : this.out.join('\n');
  }

  private dispatch(d: Directive): void {
    const a = new Args(d.args);
    switch (d.cmd) {
      case 'log-level':
        this.setLevel(a.word(0));
        return;
      case 'add-nodes':
        return this.addNodes(a);
      case 'campaign':
        return this.withNode(a, (m) => m.node.campaign());
      case 'propose':
        return this.withNode(a, (m) => m.node.propose(enc.encode(a.word(1))));
      case 'propose-conf-change':
        return this.withNode(a, (m) => {
          parseConfChange(a.word(1));
          m.node.proposeConfChange(enc.encode(a.word(1)));
        });
      case 'read-index':
        return this.withNode(a, (m) => m.node.readIndex(enc.encode(a.word(1))));
      case 'transfer-leadership':
        return this.withNode(a, (m) => m.node.transferLeader(a.int('to')), a.int('from'));
      case 'tick-heartbeat':
        return this.withNode(a, (m) => this.ticks(m, m.node.raft.heartbeatTimeout));
      case 'tick-election':
        return this.withNode(a, (m) => this.ticks(m, m.node.raft.electionTimeout));
      case 'tick':
        return this.withNode(a, (m) => this.ticks(m, a.int('n')));
      case 'process-ready':
        for (const id of this.ids(a)) this.processReady(this.member(id));
        return;
      case 'deliver-msgs':
        return this.deliverCmd(a);
      case 'stabilize':
        return this.stabilize(a.positionals().map(Number));
      case 'partition':
        return this.partition(d.args);
      case 'heal':
        this.cut.clear();
        return;
      case 'compact':
        return this.compact(this.member(a.intAt(0)), a.intAt(1));
      case 'report-snapshot':
        return this.withNode(a, (m) => m.node.reportSnapshot(a.int('to'), !a.has('reject')), a.int('from'));
      case 'status':
        for (const id of this.ids(a)) this.out.push(...formatStatus(this.member(id).node));
        return;
      case 'raft-log':
        return this.raftLog(this.member(a.intAt(0)));
      case 'kv':
        for (const id of this.ids(a)) this.out.push(`${id}: [${this.member(id).kv.join(' ')}]`);
        return;
      default:
        throw new ScriptCommandError(`line ${d.line}: unknown command "${d.cmd}"`);
    }
  }

  private setLevel(l: string): void {
    const v = LEVELS[l];
    if (v === undefined) throw new ScriptCommandError(`unknown log level "${l}"`);
    this.level = v;
  }

  private logger(level: Level, msg: string): void {
    if (LEVELS[level]! >= this.level) this.out.push(`${this.indent}${level.toUpperCase()} ${msg}`);
  }

  private member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new ScriptCommandError(`no node ${id}`);
    return m;
  }

  /** Node IDs named as positionals, or every node. */
  private ids(a: Args): number[] {
    const p = a.positionals().map(Number);
    return p.length > 0 ? p : [...this.members.keys()].sort((x, y) => x - y);
  }

  private withNode(a: Args, f: (m: Member) => void, id = a.intAt(0)): void {
    f(this.member(id));
  }

  private ticks(m: Member, n: number): void {
    for (let i = 0; i < n; i++) m.node.tick();
  }

  /**
   * `add-nodes N [voters=(..)] [learners=(..)] [index=I] [prevote=bool] [checkquorum=bool] [election=T]
   * [heartbeat=T] [max-inflight=N]`: adds N nodes with the next free IDs. With voters, each storage holds the
   * bootstrap snapshot (index I, term 1) of that membership; without, storage is empty (a member joining later).
   */
  private addNodes(a: Args): void {
    const n = a.intAt(0);
    const voters = a.list('voters');
    const learners = a.list('learners');
    const index = a.has('index') ? a.int('index') : 1;
    const cfg: Partial<RaftConfig> = {
      electionTick: a.has('election') ? a.int('election') : 10,
      heartbeatTick: a.has('heartbeat') ? a.int('heartbeat') : 1,
      preVote: a.has('prevote') ? a.bool('prevote') : true,
      checkQuorum: a.has('checkquorum') ? a.bool('checkquorum') : true,
    };
    if (a.has('max-inflight')) cfg.maxInflightMsgs = a.int('max-inflight');
    let next = Math.max(0, ...this.members.keys()) + 1;
    for (let i = 0; i < n; i++, next++) {
      const storage = new MemoryStorage();
      if (voters.length > 0) {
        if (index === 1 && learners.length === 0) {
          RawNode.bootstrap(storage, voters);
        } else {
          storage.applySnapshot({ metadata: { index, term: 1, confState: { voters, learners } }, data: enc.encode('') });
          storage.setHardState({ term: 1, vote: 0, commit: index });
        }
      }
      const node = new RawNode({
        id: next,
        storage,
        electionTick: cfg.electionTick!,
        heartbeatTick: cfg.heartbeatTick!,
        ...cfg,
        rand: () => 0,
        logger: (level, msg) => this.logger(level, msg),
      });
      this.members.set(next, { id: next, node, storage, cfg, confState: storage.initialState().confState, kv: [] });
    }
  }

  /** Host loop body for one node: persist, apply, advance, then queue the messages (Ready contract). */
  private processReady(m: Member): boolean {
    if (!m.node.hasReady()) return false;
    const rd = m.node.ready();
    this.out.push(`> ${m.id} handling Ready`);
    this.indent = '  ';
    try {
      this.persistApplyAdvance(m, rd);
    } finally {
      this.indent = '';
    }
    return true;
  }

  private persistApplyAdvance(m: Member, rd: Ready): void {
    for (const l of formatReady(rd)) this.out.push(`  ${l}`);
    if (rd.snapshot) {
      m.storage.applySnapshot(rd.snapshot);
      m.confState = rd.snapshot.metadata.confState;
      const data = dec.decode(rd.snapshot.data);
      m.kv = data === '' ? [] : data.split(' ');
    }
    if (rd.entries.length > 0) m.storage.append(rd.entries);
    if (rd.hardState) m.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        const text = dec.decode(e.data);
        m.confState = m.node.applyConfChange(parseConfChange(text));
        this.out.push(`  applied ${text}: ${formatConfState(m.confState)}`);
      } else if (e.data.length > 0) {
        m.kv.push(dec.decode(e.data));
      }
    }
    m.node.advance(rd);
    for (const msg of [...rd.messages, ...rd.messagesAfterPersist]) {
      const q = this.queues.get(msg.to) ?? [];
      q.push(msg);
      this.queues.set(msg.to, q);
    }
  }

  /** `deliver-msgs [ids...] [drop=(ids)]`: steps queued messages into their recipients, or drops them. */
  private deliverCmd(a: Args): void {
    for (const id of a.list('drop')) {
      for (const msg of this.queues.get(id) ?? []) this.out.push(`dropped: ${formatMessage(msg)}`);
      this.queues.delete(id);
    }
    const p = a.positionals().map(Number);
    const ids = p.length > 0 ? p : a.has('drop') ? [] : this.queuedIds();
    for (const id of ids) this.deliver(id);
  }

  private queuedIds(): number[] {
    return [...this.queues.keys()].filter((k) => (this.queues.get(k) ?? []).length > 0).sort((x, y) => x - y);
  }

  private deliver(id: number): boolean {
    const q = this.queues.get(id) ?? [];
    if (q.length === 0) return false;
    this.queues.delete(id);
    const target = this.members.get(id);
    this.out.push(`> ${id} receiving messages`);
    this.indent = '  ';
    try {
      this.stepAll(target, q);
    } finally {
      this.indent = '';
    }
    return true;
  }

  private stepAll(target: Member | undefined, q: Message[]): void {
    for (const msg of q) {
      if (!target || this.cut.has(`${msg.from}-${msg.to}`)) {
        this.out.push(`  dropped: ${formatMessage(msg)}`);
        continue;
      }
      this.out.push(`  ${formatMessage(msg)}`);
      target.node.step(msg);
    }
  }

  /** Alternates Ready handling and delivery (in node order) until nothing is left for the given nodes. */
  private stabilize(only: number[]): void {
    const sel = (ids: number[]): number[] => (only.length > 0 ? ids.filter((i) => only.includes(i)) : ids);
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let busy = false;
      for (const id of sel([...this.members.keys()].sort((x, y) => x - y))) busy = this.processReady(this.member(id)) || busy;
      for (const id of sel(this.queuedIds())) busy = this.deliver(id) || busy;
      if (!busy) return;
    }
    throw new Error(`stabilize did not settle within ${MAX_STABILIZE_ROUNDS} rounds`);
  }

  /** `partition 1 2,3`: cuts every link between the groups (both ways); `partition 1` isolates node 1. */
  private partition(args: Arg[]): void {
    const groups = args.map((g) => g.key.split(',').map(toInt));
    if (groups.length === 1) groups.push([...this.members.keys()].filter((k) => !groups[0]!.includes(k)));
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const x of g) for (const y of h) this.cut.add(`${x}-${y}`);
      }
    }
    this.out.push(`cut: ${groups.map((g) => `(${g.join(' ')})`).join(' | ')}`);
  }

  /**
   * `compact ID INDEX`: the host snapshots its state machine at INDEX (which must be its applied index, so the
   * snapshot's data and membership are those at INDEX) and discards the log up to it.
   */
  private compact(m: Member, index: number): void {
    const applied = m.node.status().applied;
    if (index !== applied) throw new ScriptCommandError(`compact ${m.id}: index ${index} is not the applied index ${applied}`);
    const snap = m.storage.createSnapshot(index, m.confState, enc.encode(m.kv.join(' ')));
    m.storage.compact(index);
    this.out.push(`${m.id}: snapshot ${formatSnapshot(snap)}; log now [${m.storage.firstIndex()}, ${m.storage.lastIndex()}]`);
  }

  private raftLog(m: Member): void {
    const ents = m.node.raft.raftLog.allEntries();
    if (ents.length === 0) this.out.push(`${m.id}: log empty (first index ${m.node.raft.raftLog.firstIndex()})`);
    for (const e of ents) this.out.push(formatEntry(e));
  }
}

/** Typed access to a directive's arguments; throws ScriptCommandError for a missing or malformed one. */
class Args {
  constructor(private readonly args: Arg[]) {}

  /** Words without `=`, in order. */
  positionals(): string[] {
    return this.args.filter((a) => a.vals.length === 0).map((a) => a.key);
  }

  word(i: number): string {
    const p = this.positionals()[i];
    if (p === undefined) throw new ScriptCommandError(`missing argument #${i + 1}`);
    return p;
  }

  intAt(i: number): number {
    return toInt(this.word(i));
  }

  has(key: string): boolean {
    return this.args.some((a) => a.key === key);
  }

  private get(key: string): Arg {
    const a = this.args.find((x) => x.key === key);
    if (!a) throw new ScriptCommandError(`missing argument ${key}=`);
    return a;
  }

  int(key: string): number {
    return toInt(this.get(key).vals[0] ?? '');
  }

  bool(key: string): boolean {
    const v = this.get(key).vals[0];
    if (v !== 'true' && v !== 'false') throw new ScriptCommandError(`${key}= wants true or false`);
    return v === 'true';
  }

  list(key: string): number[] {
    return this.has(key) ? this.get(key).vals.map(toInt) : [];
  }
}

function toInt(s: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new ScriptCommandError(`"${s}" is not an integer`);
  return n;
}
