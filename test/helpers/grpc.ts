/**
 * A raw etcd v3 gRPC client for tests, built on grpc-js and our own protobuf codecs
 * (src/wire/codec.ts). Unlike the `etcd3` npm client it shows every response field
 * (`more`, `count`, `prev_kv`, headers), which is what the differential tests compare.
 *
 * Requests are plain objects with protobufjs camelCase names and Buffer/Uint8Array bytes.
 * Responses are plain objects (`toObject` with defaults), bytes as Buffers, 64-bit ints as numbers.
 * Errors reject with a grpc-js ServiceError (`code`, `details`).
 */
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { root } from '../../src/wire/codec';

/** A gRPC failure as the tests compare it: status code + message. */
export interface RpcError { code: number; details: string }

/** Method table: service → method → [request type, response type]. */
const METHODS: Record<string, Record<string, [string, string]>> = {
  KV: {
    Range: ['RangeRequest', 'RangeResponse'],
    Put: ['PutRequest', 'PutResponse'],
    DeleteRange: ['DeleteRangeRequest', 'DeleteRangeResponse'],
    Txn: ['TxnRequest', 'TxnResponse'],
    Compact: ['CompactionRequest', 'CompactionResponse'],
  },
  Maintenance: {
    Status: ['StatusRequest', 'StatusResponse'],
    Alarm: ['AlarmRequest', 'AlarmResponse'],
    Hash: ['HashRequest', 'HashResponse'],
    HashKV: ['HashKVRequest', 'HashKVResponse'],
    Defragment: ['DefragmentRequest', 'DefragmentResponse'],
  },
  Cluster: { MemberList: ['MemberListRequest', 'MemberListResponse'] },
  Lease: {
    LeaseGrant: ['LeaseGrantRequest', 'LeaseGrantResponse'],
    LeaseRevoke: ['LeaseRevokeRequest', 'LeaseRevokeResponse'],
    LeaseTimeToLive: ['LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse'],
    LeaseLeases: ['LeaseLeasesRequest', 'LeaseLeasesResponse'],
  },
  Auth: {
    AuthEnable: ['AuthEnableRequest', 'AuthEnableResponse'],
    AuthDisable: ['AuthDisableRequest', 'AuthDisableResponse'],
    Authenticate: ['AuthenticateRequest', 'AuthenticateResponse'],
    UserAdd: ['AuthUserAddRequest', 'AuthUserAddResponse'],
    UserGet: ['AuthUserGetRequest', 'AuthUserGetResponse'],
    UserList: ['AuthUserListRequest', 'AuthUserListResponse'],
    UserDelete: ['AuthUserDeleteRequest', 'AuthUserDeleteResponse'],
    UserChangePassword: ['AuthUserChangePasswordRequest', 'AuthUserChangePasswordResponse'],
    UserGrantRole: ['AuthUserGrantRoleRequest', 'AuthUserGrantRoleResponse'],
    UserRevokeRole: ['AuthUserRevokeRoleRequest', 'AuthUserRevokeRoleResponse'],
    RoleAdd: ['AuthRoleAddRequest', 'AuthRoleAddResponse'],
    RoleGet: ['AuthRoleGetRequest', 'AuthRoleGetResponse'],
    RoleList: ['AuthRoleListRequest', 'AuthRoleListResponse'],
    RoleDelete: ['AuthRoleDeleteRequest', 'AuthRoleDeleteResponse'],
    RoleGrantPermission: ['AuthRoleGrantPermissionRequest', 'AuthRoleGrantPermissionResponse'],
    RoleRevokePermission: ['AuthRoleRevokePermissionRequest', 'AuthRoleRevokePermissionResponse'],
  },
};

const TO_OBJECT: protobuf.IConversionOptions = { defaults: true, arrays: true, longs: Number, enums: Number };

/** "http://127.0.0.1:2379" → "127.0.0.1:2379". */
export function grpcTarget(endpoint: string): string {
  return endpoint.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '');
}

/** Raw unary client for one endpoint. */
export class RawClient {
  private readonly client: grpc.Client;
  /** Sent as metadata `token` with every call when set (etcd's auth token). */
  token: string | undefined;

  /**
   * `options`: extra grpc-js channel options (e.g. reconnect backoff for a server that restarts); `credentials`:
   * e.g. grpc.credentials.createSsl(ca, key, cert) for an https member (default: plaintext).
   */
  constructor(endpoint: string, options: grpc.ChannelOptions = {}, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    this.client = new grpc.Client(grpcTarget(endpoint), credentials, {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      ...options,
    });
  }

  /** Calls `/etcdserverpb.<service>/<method>` with a plain request object; resolves the decoded response. */
  call<T = any>(serviceName: string, method: string, request: object, timeoutMs = 30_000): Promise<T> {
    const types = METHODS[serviceName]?.[method];
    if (!types) throw new Error(`RawClient: unknown method ${serviceName}.${method}`);
    const reqT = root.lookupType(`etcdserverpb.${types[0]}`);
    const resT = root.lookupType(`etcdserverpb.${types[1]}`);
    return new Promise<T>((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/etcdserverpb.${serviceName}/${method}`,
        (r: object) => Buffer.from(reqT.encode(reqT.fromObject(r)).finish()),
        (b: Buffer) => resT.toObject(resT.decode(b), TO_OBJECT) as T,
        request,
        this.metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res as T)),
      );
    });
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token !== undefined) md.set('token', this.token);
    return md;
  }

  range(r: object) { return this.call('KV', 'Range', r); }
  put(r: object) { return this.call('KV', 'Put', r); }
  deleteRange(r: object) { return this.call('KV', 'DeleteRange', r); }
  txn(r: object) { return this.call('KV', 'Txn', r); }
  compact(r: object) { return this.call('KV', 'Compact', r); }
  status() { return this.call('Maintenance', 'Status', {}); }
  memberList() { return this.call('Cluster', 'MemberList', {}); }

  /**
   * Runs a call and returns either `{ ok: response }` or `{ err: {code, details} }` — never rejects
   * for a gRPC status (handy for lock-step comparisons).
   */
  async settle(serviceName: string, method: string, request: object): Promise<{ ok?: any; err?: RpcError }> {
    try {
      return { ok: await this.call(serviceName, method, request) };
    } catch (e) {
      const se = e as grpc.ServiceError;
      if (typeof se.code !== 'number') throw e;
      return { err: { code: se.code, details: se.details } };
    }
  }

  close(): void { this.client.close(); }
}

/**
 * Polls until a linearizable Range succeeds on `endpoint` (so a leader exists and reads work),
 * or throws after `timeoutMs`. `isDead()` lets the caller stop early when the process has exited.
 */
export async function waitUntilServing(endpoint: string, timeoutMs = 30_000, isDead?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  const c = new RawClient(endpoint);
  try {
    while (Date.now() < deadline) {
      const dead = isDead?.();
      if (dead) throw new Error(`server exited before serving: ${dead}`);
      try {
        await c.call('KV', 'Range', { key: Buffer.from('__etcetera_probe') }, 2000);
        return;
      } catch (e) {
        last = (e as Error).message;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`${endpoint} did not serve within ${timeoutMs} ms (last error: ${last})`);
  } finally {
    c.close();
  }
}
