/**
 * The write path of a member (etcd: EtcdServer.processInternalRaftRequestOnce, raftNode apply hand-off): a request
 * is admitted (src/server/admission.ts, one decode), given a request ID, framed as a Raft entry (an Authed wrapper
 * when it acts as a user), registered with the proposals waiting for their result (bounded, with etcd's request
 * timeout) and queued on the Raft host. Committed entries come back through {@link WritePath.committed}: the ones
 * the main thread applies itself (ConfChanges, member attributes) are taken out, the rest go to the apply worker,
 * whose results answer the proposers. Proposals the core drops, and every proposal once the WAL or the apply worker
 * failed, are answered with etcd's errors here.
 *
 * It sees the member only through {@link WritePathHost}; the server (src/server/etcd-server.ts) wires it.
 */
import type { Logger } from '../log';
import { etcdError } from '../errors';
import { EntryKind, ENTRY_HEADER_BYTES, decodeEntryData, encodeAuthedPayload, encodeEntryData, type Propose, type ProposeWith } from '../wire/entry';
import { AuthOp } from '../wire/auth-mgmt';
import type { Entry } from '../raft';
import type { WalFatalError } from '../wal/client';
import { ApplyFaultCode } from '../apply/apply-status';
import { metrics } from '../metrics/registry';
import { Proposal, type Admission } from './admission';
import type { PendingProposals } from './pending-proposals';
import type { RaftHost } from './raft-host';
import type { Faults } from './health';

/** What the write path needs of the member. */
export interface WritePathHost {
  readonly logger: Logger;
  readonly admission: Admission;
  readonly pending: PendingProposals;
  nextRequestId(): number;
  /** The Raft host: proposals, and the core's view of the leader for dropped ones. */
  readonly raft: Pick<RaftHost, 'propose' | 'status'>;
  /** Faults that stop writes (the WAL's, the apply worker's). */
  readonly faults: Faults;
  /** The apply worker's hand-off (RaftHost's ApplySink.apply; throws when the worker died). */
  applyToWorker(entries: Entry[]): void;
  /** Takes out the entries the main thread applies itself (src/server/membership-apply.ts). */
  takeOutMembership(entries: Entry[]): Entry[];
  /** Each committed Authenticate entry (index, AuthMgmt payload), in log order (the auth host registers its token). */
  onAuthenticateCommitted(index: number, payload: Uint8Array): void;
}

/** One member's write path. */
export class WritePath {
  constructor(private readonly host: WritePathHost) {}

  /**
   * etcd api: KV.Put/DeleteRange/Txn/Compact (and lease, alarm, auth requests) through Raft, after the admission
   * checks. With `identity` (the caller's, etcd RequestHeader username + auth_revision) the entry is an
   * EntryKind.Authed wrapper so the apply worker checks permissions as that user. Resolves with the apply worker's
   * encoded response; rejects EtcdError (admission refusals, RequestTooManyRequests when the Raft host's queue is
   * full, NoLeader / ProposalDropped, Timeout, apply errors). A property, so it can be handed on as a value.
   */
  readonly propose: Propose = (kind, request, decoded, identity) =>
    new Promise<Uint8Array>((resolve, reject) => {
      this.proposeWith(kind, request, decoded, identity ?? null, (err, response) => {
        if (err === null) resolve(response!);
        else reject(err);
      });
    });

  /**
   * {@link propose} answering through `done` (the pending-proposal table holds it; no promise per request): the
   * KV handlers' path. `done` runs synchronously for admission refusals and a full Raft queue.
   */
  readonly proposeWith: ProposeWith = (kind, request, decoded, identity, done) => {
    const { admission, pending, raft } = this.host;
    const refused = admission.admit(new Proposal(kind, request, decoded));
    if (refused !== null) return done(refused);
    const requestId = this.host.nextRequestId();
    const data = identity
      ? encodeEntryData(EntryKind.Authed, requestId, encodeAuthedPayload(kind, identity.username, identity.revision, request))
      : encodeEntryData(kind, requestId, request);
    if (!pending.add(requestId, Date.now(), done, data.length)) return;
    if (!raft.propose(data)) pending.fail(requestId, etcdError('RequestTooManyRequests'));
  };

  /**
   * The core dropped these proposals (their entry data). With a leader known, Raft dropped them on purpose
   * (leadership transfer, uncommitted-size limit): etcd answers raft's own error. Without one, etcd 3.4 would block
   * the proposal until its request timeout; failing at once with "no leader" tells the client the same sooner.
   */
  dropped(datas: Uint8Array[]): void {
    // The core's own view: the server's known leader is only updated from the next Ready.
    const err = this.host.raft.status().lead === 0 ? etcdError('NoLeader') : etcdError('ProposalDropped');
    for (const d of datas) {
      const e = decodeEntryData(d);
      if (e !== null) this.host.pending.fail(e.requestId, err);
    }
    metrics.etcd_server_proposals_failed_total.inc(datas.length);
  }

  /**
   * Hands committed entries to the apply worker, after taking out what the main thread applies itself:
   * ConfChanges and member attributes (etcd: membership updates are applied by the server, not the MVCC backend).
   */
  committed(entries: Entry[]): void {
    for (const e of entries) {
      if (e.data.length > ENTRY_HEADER_BYTES && e.data[0] === EntryKind.AuthMgmt && e.data[ENTRY_HEADER_BYTES] === AuthOp.Authenticate) {
        this.host.onAuthenticateCommitted(e.index, e.data.subarray(ENTRY_HEADER_BYTES));
      }
    }
    const out = this.host.takeOutMembership(entries);
    metrics.etcd_server_proposals_committed_total.inc(entries.length);
    if (this.host.faults.applyFailed) return; // replayed from the WAL after a restart
    try {
      this.host.applyToWorker(out);
    } catch (e) {
      // The worker died before its 'fatal' message reached us: same outcome. (A full queue pauses Raft instead.)
      this.applyFailed((e as Error).message, ApplyFaultCode.Internal);
    }
  }

  /**
   * The WAL can no longer make anything durable (e.g. ENOSPC). Nothing written after this point could be
   * acknowledged, so writes fail at once with etcd's no-space error and /health turns false; reads keep working.
   * (etcd exits on a WAL write error; refusing writes keeps the data readable while the operator frees space.)
   */
  walFailed(e: WalFatalError): void {
    if (!this.host.faults.walFailed(e)) return;
    this.host.logger.error({ error: e.message }, 'WAL failed; refusing writes');
    this.host.pending.failAll(etcdError(this.host.faults.writeError()));
  }

  /**
   * The apply worker stopped (e.g. ENOSPC or MDB_MAP_FULL in LMDB). Committed entries stay in the WAL and are
   * applied after a restart; until then writes fail with etcd's no-space error and /health is false.
   */
  applyFailed(message: string, code: ApplyFaultCode): void {
    if (!this.host.faults.applyWorkerFailed(message, code)) return;
    this.host.logger.error({ error: message }, 'apply worker failed; refusing writes');
    this.host.pending.failAll(etcdError(this.host.faults.writeError()));
  }

  /** Fails the proposals past etcd's request timeout (called on every Raft tick); returns how many. */
  expire(nowMs: number): number {
    const expired = this.host.pending.expire(nowMs);
    if (expired > 0) metrics.etcd_server_proposals_failed_total.inc(expired);
    return expired;
  }
}
