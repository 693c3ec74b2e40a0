/**
 * The nemesis: one fault at a time on a seeded schedule — SIGKILL and restart, SIGSTOP and SIGCONT, a symmetric
 * partition isolating one member, one-way partitions (a member that cannot send, a member that cannot hear, one
 * direction between two members), each optionally starting with a reset of the cut connections — held for a while,
 * healed, then a quiet period. Half of the faults target the current leader.
 */
import { Rng } from '../helpers/rng';
import type { NemesisCluster, NemesisMember } from './cluster';
import type { History } from './history';

/** Every fault the nemesis knows. */
export const FAULT_KINDS = ['kill', 'pause', 'isolate', 'mute', 'deafen', 'one-way'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultOptions {
  seed: number;
  kinds: readonly FaultKind[];
  /** Quiet period between faults, ms [min, max]. */
  quietMs: [number, number];
  /** How long a fault lasts, ms [min, max]. */
  holdMs: [number, number];
}

/** Faults injected, by kind. */
export type FaultCounts = Record<FaultKind, number>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs faults until `stop()` is true; always leaves the cluster healed (every member running and unpaused, no block). */
export async function runFaults(cluster: NemesisCluster, history: History, o: FaultOptions, stop: () => boolean): Promise<FaultCounts> {
  const rng = new Rng(o.seed);
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as FaultCounts;
  const net = cluster.network;
  const between = ([lo, hi]: [number, number]): number => rng.between(lo, hi);

  while (!stop()) {
    await sleep(between(o.quietMs));
    if (stop()) break;
    const kind = rng.pick(o.kinds);
    const leader = rng.chance(0.5) ? await cluster.currentLeader(1000) : null;
    const target: NemesisMember = leader ?? rng.pick(cluster.members);
    const others = cluster.members.filter((m) => m !== target).map((m) => m.name);
    const reset = rng.chance(0.5);
    const hold = between(o.holdMs);
    const who = `${target.name}${leader ? ' (leader)' : ''}`;
    counts[kind]++;
    switch (kind) {
      case 'kill': {
        history.nemesis('kill', who);
        await target.signal('SIGKILL');
        await sleep(hold);
        const during = await cluster.currentLeader(1000);
        target.spawn();
        history.nemesis('restart', `${target.name} (leader while it was down: ${during?.name ?? 'none agreed'})`);
        break;
      }
      case 'pause': {
        history.nemesis('pause', who);
        await target.signal('SIGSTOP');
        await sleep(hold);
        const during = await cluster.currentLeader(1000);
        await target.signal('SIGCONT');
        history.nemesis('resume', `${target.name} (leader at the end of the pause: ${during?.name ?? 'none agreed'})`);
        break;
      }
      case 'isolate':
      case 'mute':
      case 'deafen':
      case 'one-way': {
        let pairs: [string, string][];
        if (kind === 'isolate') pairs = others.flatMap((b): [string, string][] => [[target.name, b], [b, target.name]]);
        else if (kind === 'mute') pairs = others.map((b): [string, string] => [target.name, b]);
        else if (kind === 'deafen') pairs = others.map((b): [string, string] => [b, target.name]);
        else pairs = [[target.name, rng.pick(others)]];
        net.block(pairs);
        let cut = 0;
        if (reset) for (const [a, b] of pairs) cut += net.reset(a, b);
        history.nemesis(kind, `${who}: ${net.describe().join(' ')}${reset ? ` (reset ${cut} connections)` : ''}`);
        await sleep(hold);
        const during = await cluster.currentLeader(1000);
        net.heal();
        history.nemesis('heal', `${kind} ${target.name} (leader at the end of it: ${during?.name ?? 'none agreed'})`);
        break;
      }
    }
  }
  return counts;
}

/** Heals everything a fault may have left (run after the schedule, and after a failure). */
export async function healAll(cluster: NemesisCluster): Promise<void> {
  cluster.network.heal();
  for (const m of cluster.members) {
    if (m.paused) await m.signal('SIGCONT');
    if (!m.running) m.spawn();
  }
}
