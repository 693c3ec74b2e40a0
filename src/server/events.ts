/**
 * The events a member publishes (src/member-events.ts: leader, applied, mvccEvents, restored), plus the membership
 * events only the server's own modules and the CLI listen to, typed: a listener's arguments are checked against
 * {@link ServerEventMap} at compile time.
 */
import { EventEmitter } from 'node:events';
import type { MemberEventMap } from '../member-events';
import type { Membership } from './membership';

/** Event name → listener arguments. */
export interface ServerEventMap extends MemberEventMap {
  /** The membership changed (a ConfChange applied, or adopted from a leader's snapshot). */
  membership: [membership: Membership];
  /** This member was removed from the cluster; the process should stop. */
  removed: [];
}

/** The member's typed event emitter. */
export class ServerEvents extends EventEmitter<ServerEventMap> {}
