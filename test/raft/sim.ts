/**
 * Deterministic cluster simulator for the Raft core (no I/O, no timers): real RawNodes on a simulated network
 * with loss, duplication, reordering (random delays), symmetric/asymmetric partitions, crash/restart (losing the
 * outstanding Ready), periodic log compaction, ReadIndex, leader transfer. After every step it checks Election
 * Safety, Log Matching, Leader Completeness, State Machine Safety and ReadIndex linearizability; in heal phases
 * it checks liveness (a leader emerges and a proposal commits within a bounded number of ticks).
 */
import { EntryType, ErrProposalDropped, MemoryStorage, Message, MessageType, RawNode, Ready, StateType } from '../../src/raft';
import { prng } from './helpers';

export interface SimOptions {
  seed: number;
  nodes: number;
  steps: number;
  /** Steps of chaos before each heal phase. */
  chaosSteps?: number;
  /** Steps of each heal phase (also the liveness bound, in ticks). */
  healSteps?: number;
  electionTick?: number;
}

export interface SimStats {
  steps: number;
  maxTerm: number;
  committed: number;
  elections: number;
  snapshotsInstalled: number;
  crashes: number;
  readsServed: number;
  messages: number;
}

export class SimFailure extends Error {
  constructor(msg: string, readonly step: number) {
    super(`step ${step}: ${msg}`);
    this.name = 'SimFailure';
  }
}

interface SimNode {
  id: number;
  storage: MemoryStorage;
  node: RawNode | undefined; // undefined = crashed
  outstanding: Ready | undefined;
  appliedIndex: number;
  lastCheckedCommit: number;
  restarts: number;
}

interface InFlight {
  m: Message;
  at: number;
}

const keyCache = new WeakMap<Uint8Array, string>();
/** Entry payload as a string key (cached per buffer: the simulator passes messages by reference). */
const dataKey = (d: Uint8Array): string => {
  let k = keyCache.get(d);
  if (k === undefined) {
    k = String.fromCharCode(...d);
    keyCache.set(d, k);
  }
  return k;
};
/** Registry key for (index, term); terms in a simulation stay far below 2^20. */
const itKey = (index: number, term: number): number => index * 1048576 + term;

/** Runs one simulation; throws SimFailure on the first violated property. */
export function runSimulation(opts: SimOptions): SimStats {
  const rnd = prng(opts.seed);
  const chance = (p: number): boolean => rnd() < p;
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const electionTick = opts.electionTick ?? 10;
  const chaosSteps = opts.chaosSteps ?? 500;
  const healSteps = opts.healSteps ?? 250;
  const ids = Array.from({ length: opts.nodes }, (_, i) => i + 1);
  const stats: SimStats = { steps: 0, maxTerm: 0, committed: 0, elections: 0, snapshotsInstalled: 0, crashes: 0, readsServed: 0, messages: 0 };

  const nodes = new Map<number, SimNode>();
  const newRaw = (n: SimNode): RawNode =>
    new RawNode({
      id: n.id,
      electionTick,
      heartbeatTick: 1,
      storage: n.storage,
      applied: n.appliedIndex,
      rand: prng(opts.seed * 7919 + n.id * 104729 + n.restarts),
      maxSizePerMsg: 256,
      maxInflightMsgs: 4,
    });
  for (const id of ids) {
    const storage = new MemoryStorage();
    RawNode.bootstrap(storage, ids);
    const n: SimNode = { id, storage, node: undefined, outstanding: undefined, appliedIndex: 1, lastCheckedCommit: 1, restarts: 0 };
    n.node = newRaw(n);
    nodes.set(id, n);
  }

  // global registries
  const leaderOfTerm = new Map<number, number>();
  const logReg = new Map<number, { data: string; prevTerm: number }>();
  const committedReg: ({ term: number; data: string; observedTerm: number } | undefined)[] = [];
  committedReg[1] = { term: 1, data: 'bootstrap', observedTerm: 1 };
  let maxCommitted = 1;
  const markerIndex = new Map<string, number>(); // heal marker -> committed index
  const register = (i: number, term: number, data: string, observedTerm: number): void => {
    committedReg[i] = { term, data, observedTerm };
    if (data.startsWith('heal')) markerIndex.set(data, i);
    if (i > maxCommitted) maxCommitted = i;
  };
  const reads = new Map<string, number>(); // ctx -> min index allowed

  // network
  let inflight: InFlight[] = [];
  const cut = new Set<string>(); // "from>to"
  let dropP = 0;
  let dupP = 0;
  let maxDelay = 1;
  let step = 0;
  const diskSpeed = new Map<number, number>(ids.map((id) => [id, 0.5]));
  const fail = (msg: string): never => {
    throw new SimFailure(msg, step);
  };

  const send = (msgs: Message[]): void => {
    for (const m of msgs) {
      stats.messages++;
      if (chance(dropP)) {
        if (m.type === MessageType.MsgSnap) nodes.get(m.from)?.node?.reportSnapshot(m.to, false);
        continue;
      }
      inflight.push({ m, at: step + 1 + Math.floor(rnd() * maxDelay) });
      if (chance(dupP)) inflight.push({ m, at: step + 1 + Math.floor(rnd() * maxDelay) });
    }
  };

  const apply = (n: SimNode, rd: Ready): void => {
    if (rd.snapshot) {
      const md = rd.snapshot.metadata;
      n.storage.applySnapshot(rd.snapshot);
      const reg = committedReg[md.index];
      if (reg && reg.term !== md.term) fail(`node ${n.id} installed snapshot ${md.index}/${md.term} but committed term there is ${reg.term}`);
      if (md.index < n.appliedIndex) fail(`node ${n.id} snapshot ${md.index} below applied ${n.appliedIndex}`);
      n.appliedIndex = md.index;
      stats.snapshotsInstalled++;
    }
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.index !== n.appliedIndex + 1) fail(`node ${n.id} applies ${e.index} after ${n.appliedIndex}`);
      const d = dataKey(e.data);
      const reg = committedReg[e.index];
      if (reg === undefined) {
        // committed during this step, not yet seen by the end-of-step scan
        if (e.index > n.node!.raft.raftLog.committed) fail(`node ${n.id} applies uncommitted ${e.index}`);
        register(e.index, e.term, d, n.node!.raft.term);
      } else if (reg.term !== e.term || reg.data !== d) fail(`State Machine Safety: node ${n.id} applies ${e.index}/${e.term} "${d}", committed was ${reg.term} "${reg.data}"`);
      if (e.type !== EntryType.Normal) fail('unexpected conf change');
      n.appliedIndex = e.index;
    }
    for (const rs of rd.readStates) {
      const key = dataKey(rs.requestCtx);
      const min = reads.get(key);
      if (min === undefined) fail(`unknown read ctx ${key}`);
      else if (rs.index < min) fail(`ReadIndex linearizability: read ${key} served at ${rs.index} < commit ${min} known at issue`);
      // (kept: a duplicated MsgReadIndex may legitimately be answered twice)
      stats.readsServed++;
    }
  };

  /** Completes the outstanding Ready: persist, send after-persist messages, apply, advance. */
  const complete = (n: SimNode): void => {
    const rd = n.outstanding;
    if (!rd || !n.node) return;
    apply(n, rd);
    send(rd.messagesAfterPersist);
    n.outstanding = undefined;
    n.node.advance(rd);
  };

  const crash = (n: SimNode): void => {
    n.node = undefined;
    n.outstanding = undefined; // lost: never persisted
    stats.crashes++;
  };
  const restart = (n: SimNode): void => {
    n.restarts++;
    n.node = newRaw(n);
    n.lastCheckedCommit = Math.max(n.lastCheckedCommit, n.node.status().commit);
  };

  const alive = (): SimNode[] => [...nodes.values()].filter((n) => n.node !== undefined);

  const randomPartition = (): void => {
    cut.clear();
    if (chance(0.5)) {
      // symmetric split into two groups
      const a = new Set(ids.filter(() => chance(0.5)));
      for (const x of ids) for (const y of ids) if (x !== y && a.has(x) !== a.has(y)) cut.add(`${x}>${y}`);
    } else {
      // asymmetric: random one-way link failures
      for (const x of ids) for (const y of ids) if (x !== y && chance(0.25)) cut.add(`${x}>${y}`);
    }
  };

  const checkInvariants = (): void => {
    for (const n of alive()) {
      const raft = n.node!.raft;
      const log = raft.raftLog;
      if (raft.term > stats.maxTerm) stats.maxTerm = raft.term;
      if (raft.state === StateType.Leader) {
        const other = leaderOfTerm.get(raft.term);
        if (other === undefined) {
          leaderOfTerm.set(raft.term, n.id);
          stats.elections++;
        } else if (other !== n.id) fail(`Election Safety: nodes ${other} and ${n.id} both leaders in term ${raft.term}`);
      }
      // Log Matching via a global (index, term) -> (data, prevTerm) registry: identical (index, term) pairs must
      // carry identical entries and identical predecessors, hence identical prefixes.
      const first = log.firstIndex();
      const last = log.lastIndex();
      const ents = first <= last ? log.slice(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
      let prevTerm = log.term(first - 1);
      if (prevTerm === undefined) fail(`node ${n.id} has no term for ${first - 1}`);
      for (const e of ents) {
        const k = itKey(e.index, e.term);
        const d = dataKey(e.data);
        const reg = logReg.get(k);
        if (reg === undefined) logReg.set(k, { data: d, prevTerm: prevTerm! });
        else if (reg.data !== d || reg.prevTerm !== prevTerm) fail(`Log Matching: node ${n.id} entry ${e.index}/${e.term} differs from another log`);
        if (e.term > raft.term) fail(`node ${n.id} has entry of future term ${e.term} > ${raft.term}`);
        prevTerm = e.term;
      }
      // Committed entries: record / compare.
      const c = log.committed;
      if (c > last) fail(`node ${n.id} commit ${c} beyond last ${last}`);
      for (let i = Math.max(n.lastCheckedCommit + 1, first); i <= c; i++) {
        const e = ents[i - first];
        const reg = committedReg[i];
        if (reg === undefined) register(i, e.term, dataKey(e.data), raft.term);
        else if (reg.term !== e.term || reg.data !== dataKey(e.data)) fail(`State Machine Safety: node ${n.id} committed ${i}/${e.term}, another committed ${reg.term}`);
        else if (raft.term < reg.observedTerm) reg.observedTerm = raft.term;
      }
      if (c > n.lastCheckedCommit) n.lastCheckedCommit = c;
      if (c > maxCommitted) maxCommitted = c;
    }
    // Leader Completeness: a leader of term T holds every entry committed in terms <= T.
    for (const n of alive()) {
      const raft = n.node!.raft;
      if (raft.state !== StateType.Leader) continue;
      const log = raft.raftLog;
      const last = log.lastIndex();
      for (let i = log.firstIndex(); i <= maxCommitted; i++) {
        const reg = committedReg[i];
        if (!reg || reg.observedTerm > raft.term) continue;
        if (i > last) fail(`Leader Completeness: leader ${n.id} (term ${raft.term}) lacks committed entry ${i}`);
        if (log.term(i) !== reg.term) fail(`Leader Completeness: leader ${n.id} has ${i}/${log.term(i)}, committed ${reg.term}`);
      }
    }
    stats.committed = maxCommitted;
  };

  let proposalSeq = 0;
  let readSeq = 0;
  const phaseLen = chaosSteps + healSteps;
  let healMarker: string | undefined;
  let healMarkerAt = 0;
  let leaderSeenAt = -1;

  for (step = 1; step <= opts.steps; step++) {
    const phasePos = (step - 1) % phaseLen;
    const healing = phasePos >= chaosSteps;
    if (phasePos === 0) {
      dropP = rnd() * 0.2;
      dupP = rnd() * 0.1;
      maxDelay = 1 + Math.floor(rnd() * 5);
      if (chance(0.5)) randomPartition();
      // per-node disk speed for this phase: probability that an outstanding Ready completes in a step
      for (const id of ids) diskSpeed.set(id, 0.1 + 0.8 * rnd());
    }
    if (phasePos === chaosSteps) {
      // heal: restart everyone, fix the network
      cut.clear();
      dropP = 0;
      dupP = 0;
      maxDelay = 2;
      for (const n of nodes.values()) if (!n.node) restart(n);
      healMarker = undefined;
      leaderSeenAt = -1;
    }

    if (!healing) {
      if (chance(0.01)) {
        // prefer nodes with an outstanding Ready: that is where unpersisted state gets lost
        const a = alive();
        const pending = a.filter((n) => n.outstanding !== undefined);
        const pendingLeaders = pending.filter((n) => n.node!.raft.state === StateType.Leader);
        if (pendingLeaders.length > 0 && chance(0.5)) crash(pick(pendingLeaders));
        else if (pending.length > 0 && chance(0.7)) crash(pick(pending));
        else if (a.length > 0) crash(pick(a));
      }
      if (chance(0.01)) {
        // adversarial: crash a leader whose latest log is not yet durable
        const l = alive().filter((n) => n.outstanding !== undefined && n.node!.raft.state === StateType.Leader);
        if (l.length > 0) crash(pick(l));
      }
      for (const n of nodes.values()) if (!n.node && chance(0.03)) restart(n);
      if (chance(0.01)) randomPartition();
      if (chance(0.008)) cut.clear();
      if (chance(0.003)) {
        const a = alive();
        if (a.length > 0) a.forEach((n) => n.node!.transferLeader(pick(ids)));
      }
    }

    // client traffic
    if (chance(healing ? 0.1 : 0.3)) {
      const a = alive();
      if (a.length > 0) {
        const n = pick(a);
        try {
          n.node!.propose(new TextEncoder().encode(`p${++proposalSeq}`));
        } catch (e) {
          if (!(e instanceof ErrProposalDropped)) throw e;
        }
      }
    }
    if (chance(0.05)) {
      const a = alive();
      if (a.length > 0) {
        const ctx = `r${++readSeq}`;
        reads.set(ctx, maxCommitted);
        pick(a).node!.readIndex(new TextEncoder().encode(ctx));
      }
    }
    // compaction: snapshot at the applied index, keep a short tail
    if (chance(0.05)) {
      const a = alive();
      if (a.length > 0) {
        const n = pick(a);
        const first = n.storage.firstIndex();
        if (n.appliedIndex - first > 8 && n.appliedIndex <= n.storage.lastIndex()) {
          const cs = n.node!.raft.trk.confState();
          n.storage.createSnapshot(n.appliedIndex, cs, new TextEncoder().encode(`snap@${n.appliedIndex}`));
          n.storage.compact(n.appliedIndex - Math.floor(rnd() * 4));
        }
      }
    }

    // liveness during heal
    if (healing) {
      const a = alive();
      const maxTerm = Math.max(...a.map((n) => n.node!.raft.term));
      const leader = a.find((n) => n.node!.raft.state === StateType.Leader && n.node!.raft.term === maxTerm);
      if (leader && leaderSeenAt < 0) leaderSeenAt = step;
      if (leader && (healMarker === undefined || step - healMarkerAt > 3 * electionTick)) {
        const allApplied = healMarker !== undefined && a.every((n) => appliedHas(n, healMarker!));
        if (!allApplied) {
          try {
            const mk = `heal${step}`;
            leader.node!.propose(new TextEncoder().encode(mk));
            healMarker = mk;
            healMarkerAt = step;
          } catch (e) {
            if (!(e instanceof ErrProposalDropped)) throw e;
          }
        }
      }
      if (phasePos === chaosSteps + Math.floor(healSteps * 0.6) && leaderSeenAt < 0) {
        fail(`liveness: no leader within ${Math.floor(healSteps * 0.6)} ticks of healing`);
      }
      if (phasePos === phaseLen - 1) {
        if (healMarker === undefined) fail('liveness: no proposal accepted during heal');
        const lagging = a.filter((n) => !appliedHas(n, healMarker!));
        if (lagging.length > 0) fail(`liveness: proposal ${healMarker} not applied by ${lagging.map((n) => n.id)} within ${healSteps} ticks of healing`);
      }
    }

    // ticks (occasionally skipped: clock drift)
    for (const n of alive()) if (healing || chance(0.95)) n.node!.tick();

    // deliver due messages in random order
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of inflight) (f.at <= step ? due : later).push(f);
    inflight = later;
    for (let i = due.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [due[i], due[j]] = [due[j], due[i]];
    }
    for (const { m } of due) {
      const to = nodes.get(m.to);
      const ok = to?.node !== undefined && !cut.has(`${m.from}>${m.to}`);
      if (m.type === MessageType.MsgSnap) nodes.get(m.from)?.node?.reportSnapshot(m.to, ok);
      if (!ok) {
        if (m.type === MessageType.MsgApp && chance(0.3)) nodes.get(m.from)?.node?.reportUnreachable(m.to);
        continue;
      }
      to!.node!.step(m);
    }

    // host loops: Ready handling with persistence completing now or later
    for (const n of alive()) {
      if (n.outstanding) {
        if (chance(healing ? 0.6 : diskSpeed.get(n.id)!)) complete(n);
        continue;
      }
      if (!n.node!.hasReady()) continue;
      const rd = n.node!.ready();
      n.outstanding = rd;
      send(rd.messages);
      if (chance(healing ? 0.6 : diskSpeed.get(n.id)!)) complete(n);
    }

    checkInvariants();
    stats.steps = step;
  }
  return stats;

  function appliedHas(n: SimNode, marker: string): boolean {
    // the marker was committed at some index; the node applied through it
    const i = markerIndex.get(marker);
    return i !== undefined && n.appliedIndex >= i;
  }
}
