/**
 * Test helpers for the Raft core: a synchronous in-memory cluster that persists each Ready into MemoryStorage
 * before advancing, with per-link drop rules. Deterministic (seeded PRNG), no I/O.
 */
import { Entry, EntryType, MemoryStorage, Message, RawNode, Ready, ReadState, StateType } from '../../src/raft';
import type { RaftConfig } from '../../src/raft';
import { seededRandom } from '../../src/raft';

/** mulberry32: small seeded PRNG returning [0,1). */
export const prng = seededRandom;

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Entries with the given terms at indexes start, start+1, ... */
export function entsWithTerms(terms: number[], start = 1): Entry[] {
  return terms.map((t, i) => ({ term: t, index: start + i, type: EntryType.Normal, data: enc(`e${start + i}t${t}`) }));
}

/** Persists rd into storage (snapshot, entries, HardState) the way a host must before advance. */
export function persist(storage: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  if (rd.entries.length > 0) storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
}

export interface TNode {
  id: number;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
}

/** A synchronous cluster. `deliver()` runs Ready loops and message delivery until quiescent. */
export class TestCluster {
  nodes = new Map<number, TNode>();
  /** "from-to" links that drop everything. */
  cut = new Set<string>();
  /** Optional message filter: return false to drop. */
  filter: ((m: Message) => boolean) | undefined;
  /** Every message delivered (for assertions). */
  trace: Message[] = [];

  constructor(ids: number[], cfg: Partial<RaftConfig> = {}, seed = 1, storages?: Map<number, MemoryStorage>) {
    for (const id of ids) {
      let storage = storages?.get(id);
      if (!storage) {
        storage = new MemoryStorage();
        RawNode.bootstrap(storage, ids);
      }
      const node = new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, rand: prng(seed * 1000 + id), ...cfg });
      this.nodes.set(id, { id, node, storage, applied: [], readStates: [] });
    }
  }

  get(id: number): TNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  isolate(id: number): void {
    for (const o of this.nodes.keys()) {
      if (o === id) continue;
      this.cut.add(`${id}-${o}`);
      this.cut.add(`${o}-${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Processes one Ready of node n (persist → advance) and returns its outgoing messages. */
  processReady(n: TNode): Message[] {
    if (!n.node.hasReady()) return [];
    const rd = n.node.ready();
    persist(n.storage, rd);
    n.applied.push(...rd.committedEntries);
    n.readStates.push(...rd.readStates);
    n.node.advance(rd);
    return [...rd.messages, ...rd.messagesAfterPersist];
  }

  /** Runs until no node has a Ready and no message is in flight (bounded). Returns messages delivered. */
  deliver(maxRounds = 1000): number {
    let delivered = 0;
    for (let round = 0; round < maxRounds; round++) {
      const msgs: Message[] = [];
      for (const n of this.nodes.values()) msgs.push(...this.processReady(n));
      if (msgs.length === 0) return delivered;
      for (const m of msgs) {
        if (this.cut.has(`${m.from}-${m.to}`)) continue;
        if (this.filter && !this.filter(m)) continue;
        const t = this.nodes.get(m.to);
        if (!t) continue;
        this.trace.push(m);
        t.node.step(m);
        delivered++;
      }
    }
    throw new Error('cluster did not quiesce');
  }

  tick(ids: number[] = [...this.nodes.keys()], times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) this.get(id).node.tick();
      this.deliver();
    }
  }

  /** Campaigns `id` and delivers until quiescent; asserts it became leader. */
  elect(id: number): void {
    this.get(id).node.campaign();
    this.deliver();
    if (this.get(id).node.status().state !== StateType.Leader) throw new Error(`node ${id} failed to become leader`);
  }

  leaders(): number[] {
    return [...this.nodes.values()].filter((n) => n.node.status().state === StateType.Leader).map((n) => n.id);
  }

  /** Every entry in node id's raft log (stable + unstable), as "index/term" strings. */
  logOf(id: number): string[] {
    return this.get(id).node.raft.raftLog.allEntries().map((e) => `${e.index}/${e.term}`);
  }
}
