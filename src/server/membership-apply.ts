/**
 * Membership apply on the main thread (etcd: EtcdServer.applyConfChange and the attribute updates of
 * applyEntryNormal): committed ConfChange entries and member-attribute entries change the membership, are persisted
 * to cluster.json and answered here; the apply worker sees them as empty entries. A leader's snapshot may also carry
 * a newer membership, adopted here.
 */
import type { Logger } from '../log';
import { Errors } from '../errors';
import { EntryType, type ConfChange, type Entry } from '../raft';
import { EntryKind, decodeEntryData } from '../wire/entry';
import { describeMembership, saveMembership, type Membership } from './membership';
import { applyToMembership, decodeConfChange, validateConfChange } from './conf-change';
import { decodeMembershipWire } from './join';

const EMPTY = new Uint8Array(0);

/** What {@link MembershipApply} needs of the member. */
export interface MembershipApplyOptions {
  /** The live membership (mutated in place: the server and the peer transport read the same object). */
  membership: Membership;
  /** `<data-dir>/member`, where cluster.json lives. */
  memberDir: string;
  /** This member's --name and --advertise-client-urls (what a snapshot's membership says of us is replaced by them). */
  localName: string;
  advertiseClientUrls: readonly string[];
  logger: Logger;
  /** Answers the proposer of request `requestId` (errorId 0: success, else an Errors id). */
  settle(requestId: number, errorId: number): void;
  /** Reconfigures the Raft core (RaftHost.applyConfChange). */
  applyConfChange(cc: ConfChange): void;
  /** The membership changed (peer transport, listeners of the server's membership event). */
  onChange(membership: Membership): void;
  /** This member is no longer part of the membership. */
  onRemovedSelf(): void;
}

/** Applies membership entries and adopted memberships. */
export class MembershipApply {
  constructor(private readonly o: MembershipApplyOptions) {}

  /**
   * Applies the ConfChange and member-attribute entries of `entries` and returns the entries for the apply worker:
   * the same array when there were none, else a copy in which each of them is an empty normal entry (it still
   * advances the applied index there).
   */
  takeOut(entries: Entry[]): Entry[] {
    let out = entries;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      if (e.type === EntryType.ConfChange) {
        if (out === entries) out = entries.slice();
        this.applyConfChangeEntry(e);
        out[i] = { ...e, type: EntryType.Normal, data: EMPTY };
        continue;
      }
      if (e.data.length > 0 && e.data[0] === EntryKind.MemberAttributes) {
        if (out === entries) out = entries.slice();
        this.applyMemberAttributes(e);
        out[i] = { ...e, data: EMPTY };
      }
    }
    return out;
  }

  /** A peer refused this member as removed (it missed the commit of its own removal): record the removal. */
  markRemoved(): void {
    const ms = this.o.membership;
    if ((ms.removed ?? []).includes(ms.localId)) return;
    ms.removed = [...(ms.removed ?? []), ms.localId];
    ms.members = ms.members.filter((m) => m.id !== ms.localId);
    saveMembership(this.o.memberDir, ms);
  }

  /** Applies a committed member-attributes entry (etcd: EtcdServer.publish's request, applied by every member). */
  private applyMemberAttributes(e: Entry): void {
    const d = decodeEntryData(e.data);
    if (d === null) return;
    this.o.settle(d.requestId, 0);
    let attrs: { id?: unknown; name?: unknown; clientUrls?: unknown };
    try {
      attrs = JSON.parse(Buffer.from(d.payload).toString('utf8')) as typeof attrs;
    } catch {
      this.o.logger.warn({ index: e.index }, 'ignoring malformed member attributes entry');
      return;
    }
    const m = this.o.membership.members.find((x) => x.id === attrs.id);
    if (m === undefined || !Array.isArray(attrs.clientUrls)) return;
    const urls = attrs.clientUrls.filter((u): u is string => typeof u === 'string');
    const name = typeof attrs.name === 'string' ? attrs.name : m.name;
    if (urls.join(',') === m.clientUrls.join(',') && name === m.name) return;
    m.clientUrls = urls;
    m.name = name; // an added member is "unstarted" (no name) until it publishes its attributes
    saveMembership(this.o.memberDir, this.o.membership);
  }

  /**
   * Applies a committed ConfChange entry (etcd: EtcdServer.applyConfChange): checks it against the membership,
   * updates and persists cluster.json, reconfigures Raft and the peer transport, and answers the proposer.
   * Entries at or below the membership's confIndex were applied before a restart and are skipped.
   */
  private applyConfChangeEntry(e: Entry): void {
    const d = decodeConfChange(e.data);
    if (d === null) {
      this.o.logger.warn({ index: e.index }, 'ignoring malformed ConfChange entry');
      return;
    }
    if (e.index <= (this.o.membership.confIndex ?? 0)) {
      this.o.settle(d.requestId, 0);
      return;
    }
    const err = validateConfChange(this.o.membership, d.body);
    if (err !== null) {
      this.o.logger.warn({ index: e.index, change: d.body, error: Errors[err].message }, 'refused membership change');
      this.o.settle(d.requestId, Errors[err].id);
      return;
    }
    const cc = applyToMembership(this.o.membership, d.body);
    this.o.membership.confIndex = e.index;
    saveMembership(this.o.memberDir, this.o.membership);
    if (cc !== null) this.o.applyConfChange(cc);
    this.o.logger.info({ index: e.index, change: d.body, membership: describeMembership(this.o.membership) }, 'applied membership change');
    this.o.settle(d.requestId, 0);
    this.o.onChange(this.o.membership);
    if (d.body.op === 'remove' && d.body.id === this.o.membership.localId) this.o.onRemovedSelf();
  }

  /** A snapshot from the leader carried its membership: adopt it (members, removed IDs, confIndex) if newer. */
  adopt(data: Uint8Array): void {
    const w = decodeMembershipWire(data);
    if (w === null || w.clusterId !== this.o.membership.clusterId || w.confIndex < (this.o.membership.confIndex ?? 0)) return;
    const local = w.members.find((m) => m.id === this.o.membership.localId);
    if (local !== undefined) {
      local.name = this.o.localName;
      local.clientUrls = [...this.o.advertiseClientUrls];
    }
    this.o.membership.members = w.members;
    this.o.membership.removed = w.removed;
    this.o.membership.confIndex = w.confIndex;
    saveMembership(this.o.memberDir, this.o.membership);
    this.o.logger.info({ membership: describeMembership(this.o.membership) }, 'membership from leader snapshot');
    this.o.onChange(this.o.membership);
    if (local === undefined && w.removed.includes(this.o.membership.localId)) this.o.onRemovedSelf();
  }
}
