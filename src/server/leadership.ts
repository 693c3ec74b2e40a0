/**
 * What this member knows of the leader (etcd: EtcdServer's lead / isLeader and raftNode's softState handling):
 * the known leader (0: none), whether it is this member, and the highest Raft term seen. A role change from the
 * Raft host updates them and does what etcd does on one: count a new leader, fail outstanding ReadIndex rounds
 * with the retryable "leader changed" (etcd 3.4 linearizableReadLoop), publish this member's attributes once a
 * leader is known, move the has_leader / is_leader gauges, and emit the typed `leader` event.
 */
import type { Logger } from '../log';
import { StateType } from '../raft';
import { metrics } from '../metrics/registry';
import { idToHex } from './ids';
import type { ServerEvents } from './events';

/** What a leader change touches in the member. */
export interface LeadershipHost {
  readonly logger: Logger;
  /** Fails outstanding ReadIndex rounds (src/server/reads.ts) with LeaderChanged. */
  readonly reads: { failAll(code: 'LeaderChanged'): void };
  /** Publishes this member's name and client URLs through Raft (src/server/cluster.ts), once a leader is known. */
  publishAttributes(): void;
  readonly events: Pick<ServerEvents, 'emit'>;
}

/** The leader as this member knows it. */
export class Leadership {
  private leadId = 0;
  private leader = false;
  private termSeen: number;

  /** `term`: the Raft term recovered at boot. */
  constructor(private readonly host: LeadershipHost, term = 0) {
    this.termSeen = term;
  }

  /** The known leader's member ID, 0 when none is known. */
  get lead(): number {
    return this.leadId;
  }

  /** True while this member is the Raft leader. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** The highest Raft term this member has seen (response headers' raft_term). */
  get term(): number {
    return this.termSeen;
  }

  /** The Raft host's role change (RaftHostEvents.onLeaderChange): `lead` 0 when no leader is known. */
  changed(lead: number, state: StateType, term: number): void {
    const newLeader = lead !== this.leadId && lead !== 0;
    if (newLeader) metrics.etcd_server_leader_changes_seen_total.inc();
    this.leadId = lead;
    // A ReadIndex round outstanding when a new leader appears fails with the retryable "leader changed" instead of
    // waiting for an answer the old leader will never send.
    if (newLeader) this.host.reads.failAll('LeaderChanged');
    this.termSeen = Math.max(this.termSeen, term);
    this.leader = state === StateType.Leader;
    if (lead !== 0) this.host.publishAttributes();
    this.host.events.emit('leader', lead, this.leader, this.termSeen);
    metrics.etcd_server_has_leader.set(lead === 0 ? 0 : 1);
    metrics.etcd_server_is_leader.set(this.leader ? 1 : 0);
    this.host.logger.info({ leader: idToHex(lead), term, role: StateType[state] }, 'raft role changed');
  }
}
