/**
 * The events a member publishes to the services layered on it (watch, lease, auth, v2, MoveLeader), typed: a
 * listener's arguments are checked against {@link MemberEventMap} at compile time. Here, directly under src/, so
 * every folder that listens (api, lease, server) sees the same declaration; the server's emitter
 * (src/server/events.ts) publishes these plus its own membership events.
 */
/** Event name → listener arguments. */
export interface MemberEventMap {
  /** The known leader or this member's role changed (lead 0: none known; term: the Raft term). */
  leader: [lead: number, isLeader: boolean, term: number];
  /** A batch was applied and its results delivered to the proposers. */
  applied: [appliedIndex: number];
  /** The encoded MVCC events (mvccpb.Event bytes) of the batch just applied, after 'applied' (the watch hub). */
  mvccEvents: [events: Buffer[]];
  /** The store was replaced wholesale (snapshot restore): watchers catch up from the new history. */
  restored: [];
}

type Listener<K extends keyof MemberEventMap> = (...args: MemberEventMap[K]) => void;

/**
 * What a listener sees of the member's emitter: subscribe and unsubscribe, typed by {@link MemberEventMap} (one
 * overload per event, so an emitter of a wider map, like the server's, is one too).
 */
export interface MemberEventSource {
  on(event: 'leader', listener: Listener<'leader'>): unknown;
  on(event: 'applied', listener: Listener<'applied'>): unknown;
  on(event: 'mvccEvents', listener: Listener<'mvccEvents'>): unknown;
  on(event: 'restored', listener: Listener<'restored'>): unknown;
  off(event: 'leader', listener: Listener<'leader'>): unknown;
  off(event: 'applied', listener: Listener<'applied'>): unknown;
  off(event: 'mvccEvents', listener: Listener<'mvccEvents'>): unknown;
  off(event: 'restored', listener: Listener<'restored'>): unknown;
}
