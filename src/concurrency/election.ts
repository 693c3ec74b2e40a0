/**
 * etcd 3.4's v3election server (etcdserver/api/v3election/election.go over clientv3/concurrency election.go), on
 * this member's own KV and watch hub. A candidate's key is name + "/" + hex(lease); the leader is the key under
 * name/ created first.
 *  - Campaign: Txn create-if-absent (put value with the lease) else get; an existing key with another value is
 *    proclaimed; then wait until every key created before ours is gone. The answer's header is the Txn's.
 *    A caller that goes away while waiting resigns (its key is deleted if it is still the one created).
 *  - Proclaim: put the value iff create_revision(key) == rev, else "election: not leader".
 *  - Resign: delete the key iff create_revision(key) == rev (no error otherwise).
 *  - Leader: the first-created key, "election: no leader" when there is none.
 *  - Observe: the current leader, then each of its value changes, then (once its key is deleted) the next leader;
 *    with no candidate, waits for the first put under the prefix.
 * Lease 0 in Campaign/Proclaim/Resign → a 60 s lease is granted first, as etcd's session does.
 */
import type { KeyValue, ResponseHeader } from '../wire/codec';
import { prefixEnd } from '../watch/watcher-index';
import {
  canceled, createRevIs, DEFAULT_SESSION_TTL, DELETE, electionNoLeader, electionNotLeader, firstCreate, leaseHex, opDelete,
  opGet, opPut, PUT, range, rangeRequest, txn, waitDeletes, watch, type ConcurrencyHost, type WatchBatch,
} from './host';

/** etcd v3electionpb.LeaderKey. */
export interface LeaderKey { name: Uint8Array; key: Uint8Array; rev: number; lease: number }

const sessionLease = (host: ConcurrencyHost, lease: number): Promise<number> =>
  lease === 0 ? host.grantLease(DEFAULT_SESSION_TTL) : Promise.resolve(lease);

async function proclaimAt(host: ConcurrencyHost, key: Buffer, rev: number, lease: number, value: Uint8Array): Promise<ResponseHeader> {
  const r = await txn(host, [createRevIs(key, rev)], [opPut(key, value, lease)], []);
  if (!r.succeeded) throw electionNotLeader();
  return r.header;
}

async function resignAt(host: ConcurrencyHost, key: Buffer, rev: number): Promise<ResponseHeader> {
  return (await txn(host, [createRevIs(key, rev)], [opDelete(key)], [])).header;
}

/** etcd v3election Campaign. */
export async function campaign(host: ConcurrencyHost, name: Uint8Array, leaseId: number, value: Uint8Array, signal: AbortSignal): Promise<{ header: ResponseHeader; leader: LeaderKey }> {
  const lease = await sessionLease(host, leaseId);
  if (signal.aborted) throw canceled();
  const pfx = Buffer.concat([name, Buffer.from('/')]);
  const key = Buffer.concat([pfx, Buffer.from(leaseHex(lease))]);
  const resp = await txn(host, [createRevIs(key, 0)], [opPut(key, value, lease)], [opGet(rangeRequest({ key }))]);
  let rev = resp.header.revision;
  if (!resp.succeeded) {
    const kv = resp.responses[0]!.responseRange!.kvs[0]!;
    rev = kv.createRevision;
    if (!Buffer.from(kv.value ?? []).equals(Buffer.from(value))) {
      try {
        await proclaimAt(host, key, rev, lease, value);
      } catch (e) {
        await resignAt(host, key, rev).catch(() => undefined);
        throw e;
      }
    }
  }
  try {
    await waitDeletes(host, pfx, rev - 1, signal);
  } catch (e) {
    if (signal.aborted) await resignAt(host, key, rev).catch(() => undefined);
    throw e;
  }
  return { header: resp.header, leader: { name, key, rev, lease } };
}

/** etcd v3election Proclaim. */
export async function proclaim(host: ConcurrencyHost, leader: LeaderKey, value: Uint8Array): Promise<ResponseHeader> {
  const lease = await sessionLease(host, leader.lease);
  return proclaimAt(host, Buffer.from(leader.key ?? []), leader.rev, lease, value);
}

/** etcd v3election Resign. */
export async function resign(host: ConcurrencyHost, leader: LeaderKey): Promise<ResponseHeader> {
  await sessionLease(host, leader.lease);
  return resignAt(host, Buffer.from(leader.key ?? []), leader.rev);
}

/** etcd v3election Leader. */
export async function leader(host: ConcurrencyHost, name: Uint8Array): Promise<{ header: ResponseHeader; kv: KeyValue }> {
  const r = await range(host, firstCreate(Buffer.concat([name, Buffer.from('/')])));
  if (r.kvs.length === 0) throw electionNoLeader();
  return { header: r.header, kv: r.kvs[0]! };
}

/**
 * etcd v3election Observe: calls `send` with each leader observation in order until `signal` aborts (then
 * resolves). Rejects on a read error.
 */
export async function observe(host: ConcurrencyHost, name: Uint8Array, signal: AbortSignal, send: (header: ResponseHeader, kv: KeyValue) => void): Promise<void> {
  const pfx = Buffer.concat([name, Buffer.from('/')]);
  while (!signal.aborted) {
    const r = await range(host, firstCreate(pfx));
    if (signal.aborted) return;
    let header: ResponseHeader;
    let kv: KeyValue;
    if (r.kvs.length > 0) {
      header = r.header;
      kv = r.kvs[0]!;
    } else {
      // No candidate: the first put under the prefix (etcd: header revision set to that kv's mod revision).
      const first = await until(host, pfx, prefixEnd(pfx), r.header.revision, { noDelete: true }, signal, (b) => {
        const ev = b.events.find((e) => e.type === PUT);
        return ev ? { header: { ...b.header, revision: ev.kv.modRevision }, kv: ev.kv } : undefined;
      });
      if (first === null) return;
      if (first === RESTART) continue;
      ({ header, kv } = first);
    }
    send(header, kv);
    // The leader's changes until its key is deleted: each put is sent with its response's header.
    const gone = await until(host, Buffer.from(kv.key), null, header.revision + 1, {}, signal, (b) => {
      for (const ev of b.events) {
        if (ev.type === DELETE) return true;
        send(b.header, ev.kv);
      }
      return undefined;
    });
    if (gone === null) return;
  }
}

const RESTART = Symbol('restart');

/**
 * Watches from `minRev` until `pick` returns a value for a response (resolved) or `signal` aborts (null).
 * A watch cancelled because `minRev` was compacted resolves RESTART: the caller's loop starts over with a fresh read.
 */
function until<T>(host: ConcurrencyHost, key: Buffer, end: Buffer | null, minRev: number, filter: { noPut?: boolean; noDelete?: boolean },
  signal: AbortSignal, pick: (b: WatchBatch) => T | undefined): Promise<T | null | typeof RESTART> {
  return new Promise<T | null | typeof RESTART>((resolve) => {
    if (signal.aborted) return resolve(null);
    const onAbort = (): void => {
      stop();
      resolve(null);
    };
    const stop = watch(host.hub, key, end, minRev, filter, (b) => {
      if (b.canceled) {
        stop();
        signal.removeEventListener('abort', onAbort);
        resolve(RESTART);
        return;
      }
      const v = pick(b);
      if (v !== undefined) {
        stop();
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      }
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
