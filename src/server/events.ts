/**
 * The events a member publishes to what is layered on it (lease expiry, watch, peer transport, MoveLeader, the
 * CLI), typed: a listener's arguments are checked against {@link ServerEventMap} at compile time.
 */
import { EventEmitter } from 'node:events';
import type { Membership } from './membership';

/** Event name → listener arguments. */
export interface ServerEventMap {
  /** The known leader or this member's role changed (lead 0: none known). */
  leader: [lead: number, isLeader: boolean, term: number];
  /** A batch was applied and its results delivered to the proposers. */
  applied: [appliedIndex: number];
  /** The encoded MVCC events (mvccpb.Event bytes) of the batch just applied, after 'applied' (the watch hub). */
  mvccEvents: [events: Buffer[]];
  /** The store was replaced wholesale (snapshot restore): watchers catch up from the new history. */
  restored: [];
  /** The membership changed (a ConfChange applied, or adopted from a leader's snapshot). */
  membership: [membership: Membership];
  /** This member was removed from the cluster; the process should stop. */
  removed: [];
}

/** The member's typed event emitter. */
export class ServerEvents extends EventEmitter<ServerEventMap> {}
