/**
 * Wiring of the concurrency services into a member: builds the ConcurrencyHost from the server's KV gateway, its
 * watch hub and a lease grant through Raft, and returns the Lock and Election entries for createGrpcServer.
 */
import { EntryKind } from '../../wire/entry';
import { pb } from '../../wire/codec';
import type { ExtraService } from './server';
import type { GrpcLogger } from './status';
import { lockServiceEntry } from './lock-service';
import { electionServiceEntry } from './election-service';
import type { WatchHub } from '../../watch/hub';
import type { ConcurrencyHost } from '../../concurrency/host';
import type { MemberSurface } from './gateway';

/** Options of {@link concurrencyServiceEntries}. */
export interface ConcurrencyServicesOptions {
  server: Pick<MemberSurface, 'propose' | 'range'>;
  hub: WatchHub;
  maxTxnOps: number;
  /** Told about a lease granted here (the leader's lessor starts its expiry clock: Lessor.granted). */
  onGranted?: (id: number, ttl: number) => void;
  logger?: GrpcLogger;
}

/** The v3lockpb.Lock and v3electionpb.Election services of one member. */
export function concurrencyServiceEntries(opts: ConcurrencyServicesOptions): ExtraService[] {
  const { server } = opts;
  const host: ConcurrencyHost = {
    propose: server.propose,
    range: (req) => server.range(req),
    hub: opts.hub,
    maxTxnOps: opts.maxTxnOps,
    async grantLease(ttl) {
      const res = await server.propose(EntryKind.LeaseGrant, pb.LeaseGrantRequest.encode({ TTL: ttl }).finish());
      const r = pb.LeaseGrantResponse.decode(res) as unknown as { ID: number; TTL: number };
      opts.onGranted?.(r.ID, r.TTL);
      return r.ID;
    },
  };
  return [lockServiceEntry(host, opts.logger), electionServiceEntry(host, opts.logger)];
}
