/**
 * Protobuf codecs for etcd's v3 wire messages, built with protobufjs from our own .proto files
 * (src/wire/*.proto, copied next to the compiled code by scripts/copy-proto.js).
 *
 * 64-bit integers (revisions, lease IDs, member IDs) decode to JS `number`: etcetera keeps every
 * ID and revision below 2^53 (see docs/architecture.md), so no Long objects cross the hot path.
 * Decoded messages use protobufjs's camelCase field names (range_end → rangeEnd, prev_kv → prevKv).
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import protobuf from 'protobufjs';

// Numbers instead of Long objects for int64/uint64: cheaper, and every value we produce fits 2^53.
(protobuf.util as { Long: unknown }).Long = undefined;
protobuf.configure();

function protoDir(): string {
  // Compiled: dist/src/wire; sources: src/wire. Both hold the .proto files.
  const here = __dirname;
  if (fs.existsSync(path.join(here, 'rpc.proto'))) return here;
  return path.join(here, '..', '..', '..', 'src', 'wire');
}

/** The protobufjs Root holding mvccpb, etcdserverpb, v3lockpb and v3electionpb. */
export const root: protobuf.Root = (() => {
  const dir = protoDir();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => path.join(dir, path.basename(target));
  r.loadSync(['kv.proto', 'rpc.proto', 'lock.proto', 'election.proto']);
  r.resolveAll();
  return r;
})();

/** Looks up a message type by its fully qualified name, e.g. "etcdserverpb.RangeRequest". Throws if unknown. */
export function messageType(fullName: string): protobuf.Type {
  return root.lookupType(fullName);
}

/** Fully qualified service (e.g. "etcdserverpb.KV"); throws if unknown. */
export function service(fullName: string): protobuf.Service {
  return root.lookupService(fullName);
}

export const pb = {
  KeyValue: messageType('mvccpb.KeyValue'),
  Event: messageType('mvccpb.Event'),
  ResponseHeader: messageType('etcdserverpb.ResponseHeader'),
  RangeRequest: messageType('etcdserverpb.RangeRequest'),
  RangeResponse: messageType('etcdserverpb.RangeResponse'),
  PutRequest: messageType('etcdserverpb.PutRequest'),
  PutResponse: messageType('etcdserverpb.PutResponse'),
  DeleteRangeRequest: messageType('etcdserverpb.DeleteRangeRequest'),
  DeleteRangeResponse: messageType('etcdserverpb.DeleteRangeResponse'),
  TxnRequest: messageType('etcdserverpb.TxnRequest'),
  TxnResponse: messageType('etcdserverpb.TxnResponse'),
  CompactionRequest: messageType('etcdserverpb.CompactionRequest'),
  CompactionResponse: messageType('etcdserverpb.CompactionResponse'),
  StatusRequest: messageType('etcdserverpb.StatusRequest'),
  StatusResponse: messageType('etcdserverpb.StatusResponse'),
  MemberListRequest: messageType('etcdserverpb.MemberListRequest'),
  MemberListResponse: messageType('etcdserverpb.MemberListResponse'),
  WatchRequest: messageType('etcdserverpb.WatchRequest'),
  WatchResponse: messageType('etcdserverpb.WatchResponse'),
  LeaseGrantRequest: messageType('etcdserverpb.LeaseGrantRequest'),
  LeaseGrantResponse: messageType('etcdserverpb.LeaseGrantResponse'),
  LeaseRevokeRequest: messageType('etcdserverpb.LeaseRevokeRequest'),
  LeaseRevokeResponse: messageType('etcdserverpb.LeaseRevokeResponse'),
  LeaseKeepAliveRequest: messageType('etcdserverpb.LeaseKeepAliveRequest'),
  LeaseKeepAliveResponse: messageType('etcdserverpb.LeaseKeepAliveResponse'),
  LeaseTimeToLiveRequest: messageType('etcdserverpb.LeaseTimeToLiveRequest'),
  LeaseTimeToLiveResponse: messageType('etcdserverpb.LeaseTimeToLiveResponse'),
  LeaseLeasesRequest: messageType('etcdserverpb.LeaseLeasesRequest'),
  LeaseLeasesResponse: messageType('etcdserverpb.LeaseLeasesResponse'),
} as const;

/** Plain shapes of the decoded messages we touch in code (protobufjs camelCase names). */
export interface KeyValue { key: Uint8Array; createRevision: number; modRevision: number; version: number; value: Uint8Array; lease: number }
export interface ResponseHeader { clusterId: number; memberId: number; revision: number; raftTerm: number }
export interface RangeRequest {
  key: Uint8Array; rangeEnd: Uint8Array; limit: number; revision: number; sortOrder: number; sortTarget: number;
  serializable: boolean; keysOnly: boolean; countOnly: boolean;
  minModRevision: number; maxModRevision: number; minCreateRevision: number; maxCreateRevision: number;
}
export interface RangeResponse { header: ResponseHeader; kvs: KeyValue[]; more: boolean; count: number }
export interface PutRequest { key: Uint8Array; value: Uint8Array; lease: number; prevKv: boolean; ignoreValue: boolean; ignoreLease: boolean }
export interface PutResponse { header: ResponseHeader; prevKv?: KeyValue | null }
export interface DeleteRangeRequest { key: Uint8Array; rangeEnd: Uint8Array; prevKv: boolean }
export interface DeleteRangeResponse { header: ResponseHeader; deleted: number; prevKvs: KeyValue[] }
export interface Compare {
  result: number; target: number; key: Uint8Array; rangeEnd: Uint8Array;
  version?: number; createRevision?: number; modRevision?: number; value?: Uint8Array; lease?: number;
  targetUnion?: 'version' | 'createRevision' | 'modRevision' | 'value' | 'lease';
}
export interface RequestOp { requestRange?: RangeRequest | null; requestPut?: PutRequest | null; requestDeleteRange?: DeleteRangeRequest | null; requestTxn?: TxnRequest | null; request?: string }
export interface ResponseOp { responseRange?: RangeResponse; responsePut?: PutResponse; responseDeleteRange?: DeleteRangeResponse; responseTxn?: TxnResponse }
export interface TxnRequest { compare: Compare[]; success: RequestOp[]; failure: RequestOp[] }
export interface TxnResponse { header: ResponseHeader; succeeded: boolean; responses: ResponseOp[] }
export interface CompactionRequest { revision: number; physical: boolean }
