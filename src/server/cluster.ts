/**
 * The Cluster capability of a member (etcd api: etcdserverpb.Cluster, etcd 3.4 etcdserver/server.go AddMember,
 * RemoveMember, PromoteMember, UpdateMember, publish): the membership calls proposed as ConfChange entries and
 * answered once this member applied them (src/server/membership-apply.ts applies them), the member list, and the
 * publication of this member's client URLs through Raft.
 *
 * It sees the member only through {@link ClusterHost}; the server (src/server/etcd-server.ts) wires it.
 */
import { etcdError } from '../errors';
import { EntryKind, type Propose } from '../wire/entry';
import type { ResponseHeader } from '../wire/codec';
import type { MemberInfo } from '../api/grpc/gateway';
import type { Membership } from './membership';
import type { PendingProposals } from './pending-proposals';
import type { RaftHost } from './raft-host';
import { encodeConfChange, learnerReady, newMemberId, readyToAddVoter, readyToRemoveVoter, validPeerUrls, type ConfChangeBody } from './conf-change';
import { encodeMembershipWire } from './join';

/**
 * How long every voter must have been connected before a membership change may shrink the margin of the quorum
 * (etcd HealthInterval, used by its strict reconfiguration check), ms.
 */
export const HEALTH_INTERVAL_MS = 5000;

/** Pause before publishing this member's attributes again after a failed attempt (ms). */
export const PUBLISH_RETRY_MS = 500;

/** What the Cluster capability needs of the member. */
export interface ClusterHost {
  /** The live membership (mutated in place by membership apply). */
  readonly membership: Membership;
  /** This member's --name and --advertise-client-urls. */
  readonly localName: string;
  readonly advertiseClientUrls: string[];
  /** Response-header identity (cluster, member, Raft term). */
  identity(): { clusterId: number; memberId: number; raftTerm: number };
  /** True once the member stopped or was removed: every call then rejects Stopped. */
  stopped(): boolean;
  /** The leader this member knows of (0: none). */
  lead(): number;
  /** The Raft host: ConfChange proposals and the leader's view of followers' progress. */
  readonly raft: Pick<RaftHost, 'proposeConfChange' | 'status'>;
  /** Proposals waiting for their apply result (a ConfChange is answered when this member applied it). */
  readonly pending: PendingProposals;
  nextRequestId(): number;
  propose: Propose;
  /** Wall-clock ms since which this member's stream to peer `id` has been open, 0 when it is not. */
  activeSince(id: number): number;
}

/** One member's Cluster service. */
export class Cluster {
  private attributesPublished = false;

  constructor(private readonly host: ClusterHost) {}

  /** True while this member is a learner (etcd: learners serve only Status and serializable Range). */
  isLearner(): boolean {
    const m = this.host.membership;
    return m.members.find((x) => x.id === m.localId)?.isLearner ?? false;
  }

  /**
   * etcd api: Cluster.MemberList (etcd 3.4 leaves the revision out of MemberList headers: 0). Members in ascending ID
   * order, as etcd's RaftCluster.Members sorts them: `member list` and the ETCD_INITIAL_CLUSTER that `member add`
   * prints follow this order.
   */
  members(): { header: ResponseHeader; members: MemberInfo[] } {
    const m = this.host.membership;
    return {
      header: { ...this.host.identity(), revision: 0 },
      members: [...m.members].sort((a, b) => a.id - b.id).map((x) => ({
        ID: x.id,
        name: x.name,
        peerURLs: x.peerUrls,
        clientURLs: x.id === m.localId ? this.host.advertiseClientUrls : x.clientUrls,
        isLearner: x.isLearner,
      })),
    };
  }

  /** Proposes a membership change through Raft and resolves once this member applied it; rejects EtcdError. */
  private proposeConfChange(body: ConfChangeBody): Promise<void> {
    if (this.host.stopped()) return Promise.reject(etcdError('Stopped'));
    const requestId = this.host.nextRequestId();
    const data = encodeConfChange({ body, requestId });
    const { pending, raft } = this.host;
    return new Promise<void>((resolve, reject) => {
      if (!pending.add(requestId, Date.now(), (err) => (err === null ? resolve() : reject(err)))) return;
      raft.proposeConfChange(data, () => pending.fail(requestId, etcdError(raft.status().lead === 0 ? 'NoLeader' : 'ProposalDropped')));
    });
  }

  private voters(): number[] {
    return this.host.membership.members.filter((x) => !x.isLearner).map((x) => x.id);
  }

  /** Voters (this member included) whose stream has been open since `sinceMs` (etcd numConnectedSince). */
  private connectedSince(sinceMs: number): number {
    const self = this.host.membership.localId;
    return this.voters().filter((id) => {
      if (id === self) return true;
      const t = this.host.activeSince(id);
      return t !== 0 && t <= sinceMs;
    }).length;
  }

  private checkCall(): void {
    if (this.host.stopped()) throw etcdError('Stopped');
    if (this.isLearner()) throw etcdError('NotSupportedForLearner');
  }

  /**
   * etcd api: Cluster.MemberAdd. `peerUrls` must be valid (MemberBadURLs); a voter needs enough started voters
   * (MemberNotEnoughStarted, etcd's strict reconfiguration check). Resolves with the new member and the member list
   * after the change was applied here; apply-time refusals are etcd's (MemberExist, PeerURLExist, TooManyLearners).
   */
  async addMember(peerUrls: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    this.checkCall();
    if (!validPeerUrls(peerUrls)) throw etcdError('MemberBadURLs');
    if (!isLearner && !readyToAddVoter(this.host.membership)) throw etcdError('MemberNotEnoughStarted');
    if (!isLearner && this.connectedSince(Date.now() - HEALTH_INTERVAL_MS) < this.voters().length) throw etcdError('Unhealthy');
    const id = newMemberId(this.host.membership, peerUrls);
    await this.proposeConfChange({ op: 'add', member: { id, name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner } });
    return { member: { ID: id, name: '', peerURLs: [...peerUrls], clientURLs: [], isLearner }, members: this.members().members };
  }

  /** etcd api: Cluster.MemberRemove. Refuses to break the started quorum (MemberNotEnoughStarted); unknown ID: MemberNotFound. */
  async removeMember(id: number): Promise<MemberInfo[]> {
    this.checkCall();
    const m = this.host.membership.members.find((x) => x.id === id);
    if (m !== undefined && !m.isLearner) {
      if (!readyToRemoveVoter(this.host.membership, id)) throw etcdError('MemberNotEnoughStarted');
      // A member this one has no stream to is not part of the active quorum: removing it is always safe.
      const down = id !== this.host.membership.localId && this.host.activeSince(id) === 0;
      const voters = this.voters().length;
      if (!down && this.connectedSince(Date.now() - HEALTH_INTERVAL_MS) - 1 < 1 + Math.floor((voters - 1) / 2)) throw etcdError('Unhealthy');
    }
    await this.proposeConfChange({ op: 'remove', id });
    return this.members().members;
  }

  /**
   * etcd api: Cluster.MemberPromote. Only the leader knows whether the learner caught up: elsewhere this throws
   * NotLeader and the caller forwards the request to the leader (etcd forwards over the peer port). A learner
   * below 90 % of the leader's match index: LearnerNotReady; a voter: MemberNotLearner; unknown: MemberNotFound.
   */
  async promoteMember(id: number): Promise<MemberInfo[]> {
    this.checkCall();
    const st = this.host.raft.status();
    if (st.progress === undefined) throw etcdError('NotLeader');
    if (!learnerReady(st.progress, st.id, id)) throw etcdError('LearnerNotReady');
    await this.proposeConfChange({ op: 'promote', id });
    return this.members().members;
  }

  /** etcd api: Cluster.MemberUpdate (peer URLs). Unknown ID: MemberNotFound; a URL of another member: PeerURLExist. */
  async updateMember(id: number, peerUrls: string[]): Promise<MemberInfo[]> {
    this.checkCall();
    if (!validPeerUrls(peerUrls)) throw etcdError('MemberBadURLs');
    await this.proposeConfChange({ op: 'update', id, peerUrls: [...peerUrls] });
    return this.members().members;
  }

  /** The leader's client URLs (for forwarding a promote), or [] when unknown. */
  leaderClientUrls(): string[] {
    const lead = this.host.lead();
    return this.host.membership.members.find((m) => m.id === lead)?.clientUrls ?? [];
  }

  /** This member's membership as a joining member or a snapshot receiver adopts it. */
  membershipData(): Uint8Array {
    return encodeMembershipWire(this.host.membership);
  }

  /**
   * Publishes this member's client URLs through Raft so every member lists them (etcd: EtcdServer.publish),
   * retrying every PUBLISH_RETRY_MS until it is committed. Called on every leader change; does nothing once done.
   */
  publishAttributes(): void {
    if (this.attributesPublished || this.host.stopped()) return;
    const payload = Buffer.from(JSON.stringify({ id: this.host.membership.localId, name: this.host.localName, clientUrls: this.host.advertiseClientUrls }));
    this.host.propose(EntryKind.MemberAttributes, payload).then(
      () => {
        this.attributesPublished = true;
      },
      () => {
        if (!this.host.stopped()) setTimeout(() => this.publishAttributes(), PUBLISH_RETRY_MS).unref();
      },
    );
  }

  /** True once this member's attributes were committed. */
  get published(): boolean {
    return this.attributesPublished;
  }
}
