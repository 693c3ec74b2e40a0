/**
 * Corruption checks (etcd 3.4 etcdserver/corrupt.go): members compare Maintenance.HashKV, the CRC-32C of their MVCC
 * history up to one revision (src/mvcc/hash-kv.ts), which members with the same applied log agree on.
 *
 *  - `--experimental-initial-corrupt-check`: before serving clients, a member hashes its store at its revision R and
 *    asks every peer for HashKV(R); a peer with the same compact revision and another hash is a mismatch, and the
 *    member refuses to start ("<id> found data inconsistency with peers").
 *  - `--experimental-corrupt-check-time` T: every T the leader hashes its store, collects its peers' hashes at that
 *    revision, confirms it is still leader (a linearizable read), hashes again, and raises the CORRUPT alarm through
 *    Raft for the first member found inconsistent (itself when its own two hashes at one revision differ; a follower
 *    ahead of it in revision or compact revision; a follower with the leader's compact revision and another hash).
 *    With CORRUPT raised every member's applier answers writes "etcdserver: corrupt cluster".
 *
 * Peers are asked over their peer URLs (etcd: GET /members/hashkv on the peer listener, with the peer TLS settings),
 * a HashKV connection of our peer transport (src/transport/hash-kv-fetch.ts) carrying HashKVRequest/HashKVResponse.
 */
import type { Logger } from '../log';
import { messageType } from '../wire/codec';
import { ALARM_ACTION_ACTIVATE, ALARM_CORRUPT } from '../wire/alarm';
import { EtcdError, Errors } from '../errors';
import { idToHex } from './ids';
import { goDuration } from '../go-duration';

const HashKVRequest = messageType('etcdserverpb.HashKVRequest');
const HashKVResponse = messageType('etcdserverpb.HashKVResponse');
const AlarmRequest = messageType('etcdserverpb.AlarmRequest');

/** The AlarmRequest bytes that raise CORRUPT for `memberId` (etcd checkHashKV's mismatch). */
export function corruptAlarmRequest(memberId: number): Uint8Array {
  return AlarmRequest.encode({ action: ALARM_ACTION_ACTIVATE, memberID: memberId, alarm: ALARM_CORRUPT }).finish();
}

/** A local HashKV result (src/mvcc/hash-kv.ts HashKVResult). */
export interface LocalHash { hash: number; currentRevision: number; compactRevision: number }

/** One peer's HashKV answer. */
interface PeerHash { id: number; endpoints: string[]; hash: number; revision: number; compactRevision: number }

/** What the checks need of the member. */
export interface CorruptionCheckHost {
  localId: number;
  logger: Logger;
  /** etcd's request timeout (ms): the bound of each peer call and of the leadership check. */
  timeoutMs: number;
  /** HashKV of the local store at `revision` (0 = current), off the event loop. @throws EtcdError Compacted / FutureRev. */
  hashKV(revision: number): Promise<LocalHash>;
  /** Every other member with its peer URLs. */
  peers(): { id: number; peerUrls: string[] }[];
  /**
   * Sends HashKVRequest bytes to member `id` at peer URL `url`, resolves the HashKVResponse bytes (transport
   * fetchPeerHashKV). @throws PeerHashKVError with the peer's error text; Error when unreachable or after `timeoutMs`.
   */
  peerHashKV(url: string, id: number, request: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  isLeader(): boolean;
  /** Resolves once a ReadIndex round confirmed leadership (etcd linearizableReadNotify). */
  linearizableWait(): Promise<void>;
  /** Proposes AlarmRequest ACTIVATE CORRUPT for `memberId` through Raft. */
  raiseCorrupt(memberId: number): Promise<void>;
}

/** The member's store disagrees with its peers: it must not serve. */
export class DataInconsistencyError extends Error {
  override readonly name = 'DataInconsistencyError';
}

/**
 * Answers a peer's HashKV query (etcd hashKVHandler): HashKVRequest bytes in, HashKVResponse bytes out.
 * @throws the local hash's EtcdError (compacted / future revision), whose details the peer receives.
 */
export async function answerPeerHashKV(hashKV: (revision: number) => Promise<LocalHash>, request: Uint8Array): Promise<Uint8Array> {
  const { revision } = HashKVRequest.decode(request) as unknown as { revision?: number | Long };
  const r = await hashKV(Number(revision ?? 0));
  return HashKVResponse.encode({ header: { revision: r.currentRevision }, hash: r.hash, compactRevision: r.compactRevision }).finish();
}

/** Asks each peer, through its first peer URL that answers, for HashKV(`revision`). Failures are logged. */
async function peerHashes(host: CorruptionCheckHost, revision: number): Promise<PeerHash[]> {
  const req = HashKVRequest.encode({ revision }).finish();
  const out = await Promise.all(host.peers().map(async (p): Promise<PeerHash | null> => {
    for (const url of p.peerUrls) {
      try {
        const res = HashKVResponse.decode(await host.peerHashKV(url, p.id, req, host.timeoutMs)) as unknown as {
          header?: { revision?: number | Long; memberId?: number | Long }; hash?: number; compactRevision?: number | Long;
        };
        return {
          id: p.id, endpoints: p.peerUrls, hash: Number(res.hash ?? 0) >>> 0,
          revision: Number(res.header?.revision ?? 0), compactRevision: Number(res.compactRevision ?? 0),
        };
      } catch (e) {
        const details = (e as Error).message;
        // etcd getPeerHashKVHTTP recognises these two by their text in the peer's answer.
        if (details.includes(Errors.FutureRev.message)) {
          host.logger.warn({ 'local-member-id': idToHex(host.localId), 'remote-peer-id': idToHex(p.id), 'remote-peer-endpoints': p.peerUrls }, 'cannot fetch hash from slow remote peer');
          return null;
        }
        if (details.includes(Errors.Compacted.message)) {
          host.logger.warn({ 'local-member-id': idToHex(host.localId), 'remote-peer-id': idToHex(p.id), 'remote-peer-endpoints': p.peerUrls }, 'cannot fetch hash from remote peer; local member is behind');
          return null;
        }
        host.logger.warn({ 'remote-peer-endpoint': url, error: details }, 'failed hash kv request');
      }
    }
    return null;
  }));
  return out.filter((p): p is PeerHash => p !== null);
}

type Long = { toNumber(): number };

/**
 * etcd CheckInitialHashKV: compares this member's HashKV at its current revision with every peer's.
 * @throws DataInconsistencyError when a peer at the same compact revision has another hash; the local hash error.
 */
export async function initialCorruptCheck(host: CorruptionCheckHost): Promise<void> {
  const id = idToHex(host.localId);
  host.logger.info({ 'local-member-id': id, timeout: goDuration(host.timeoutMs * 1e6) }, 'starting initial corruption check');
  const local = await host.hashKV(0);
  let mismatch = 0;
  for (const p of await peerHashes(host, local.currentRevision)) {
    if (p.hash === local.hash) continue;
    const fields = {
      'local-member-id': id, 'local-member-revision': local.currentRevision, 'local-member-compact-revision': local.compactRevision,
      'local-member-hash': local.hash, 'remote-peer-id': idToHex(p.id), 'remote-peer-endpoints': p.endpoints,
      'remote-peer-revision': p.revision, 'remote-peer-compact-revision': p.compactRevision, 'remote-peer-hash': p.hash,
    };
    if (p.compactRevision === local.compactRevision) {
      host.logger.warn(fields, 'found different hash values from remote peer');
      mismatch++;
    } else {
      host.logger.warn(fields, 'found different compact revision values from remote peer');
    }
  }
  if (mismatch > 0) throw new DataInconsistencyError(`${id} found data inconsistency with peers`);
  host.logger.info({ 'local-member-id': id }, 'initial corruption checking passed; no corruption');
}

/**
 * etcd checkHashKV, run by the leader: raises CORRUPT (once per pass) for the first inconsistent member found.
 * @returns the member alarmed, or null. @throws the local hash's or the leadership check's error.
 */
export async function leaderCorruptCheck(host: CorruptionCheckHost): Promise<number | null> {
  const first = await host.hashKV(0);
  const peers = await peerHashes(host, first.currentRevision);
  await host.linearizableWait();
  const second = await host.hashKV(0);
  let alarmed: number | null = null;
  let checked = 0;
  const mismatch = (memberId: number): void => {
    if (alarmed !== null) return;
    alarmed = memberId;
    host.raiseCorrupt(memberId).catch((e: unknown) => host.logger.warn({ error: (e as Error).message }, 'failed to raise the CORRUPT alarm'));
  };
  if (second.hash !== first.hash && second.currentRevision === first.currentRevision && second.compactRevision === first.compactRevision) {
    host.logger.warn({
      'revision-1': first.currentRevision, 'compact-revision-1': first.compactRevision, 'hash-1': first.hash,
      'revision-2': second.currentRevision, 'compact-revision-2': second.compactRevision, 'hash-2': second.hash,
    }, 'found hash mismatch');
    mismatch(host.localId);
  }
  for (const p of peers) {
    checked++;
    const follower = idToHex(p.id);
    if (p.revision > second.currentRevision) {
      host.logger.warn({ 'leader-revision': second.currentRevision, 'follower-revision': p.revision, 'follower-peer-id': follower }, "revision from follower must be less than or equal to leader's");
      mismatch(p.id);
    }
    if (p.compactRevision > second.compactRevision) {
      host.logger.warn({ 'leader-compact-revision': second.compactRevision, 'follower-compact-revision': p.compactRevision, 'follower-peer-id': follower }, "compact revision from follower must be less than or equal to leader's");
      mismatch(p.id);
    }
    if (p.compactRevision === first.compactRevision && p.hash !== first.hash) {
      host.logger.warn({
        'leader-compact-revision': second.compactRevision, 'leader-hash': first.hash,
        'follower-compact-revision': p.compactRevision, 'follower-hash': p.hash, 'follower-peer-id': follower,
      }, 'same compact revision then hashes must match');
      mismatch(p.id);
    }
  }
  host.logger.info({ 'number-of-peers-checked': checked }, 'finished peer corruption check');
  return alarmed;
}

/**
 * etcd monitorKVHash: every `intervalMs` the leader runs {@link leaderCorruptCheck}; followers skip their turn.
 * Returns a function that stops it. A pass never overlaps the previous one.
 */
export function startPeriodicCorruptCheck(host: CorruptionCheckHost, intervalMs: number): () => void {
  host.logger.info({ 'local-member-id': idToHex(host.localId), interval: goDuration(intervalMs * 1e6) }, 'enabled corruption checking');
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const next = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      if (!host.isLeader()) return next();
      leaderCorruptCheck(host)
        .catch((e: unknown) => host.logger.warn({ error: e instanceof EtcdError ? e.details : (e as Error).message }, 'failed to check hash KV'))
        .finally(next);
    }, intervalMs);
    timer.unref();
  };
  next();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
