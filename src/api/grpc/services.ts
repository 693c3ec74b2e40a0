/**
 * grpc-js ServiceDefinitions for etcd's v3 services, built from the protobufjs root (src/wire).
 *
 * Two codecs:
 *  - `raw` (what every service etcetera serves uses): `requestDeserialize` hands the handler the request
 *    bytes as a Buffer, `responseSerialize` sends the bytes the handler returns unchanged. Write handlers
 *    decode only to validate and propose the raw bytes; the apply worker already produced the encoded
 *    response, so the main thread never re-encodes. Decoding inside the handler (rather than in grpc-js's
 *    deserializer) also lets a malformed request get grpc-go's status text instead of grpc-js's.
 *  - `message`: protobufjs decode/encode of plain objects (camelCase fields), for services whose handlers are
 *    simpler with objects (e.g. a later Lease/Watch implementation).
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { root } from '../../wire/codec';

/** How a definition's methods (de)serialize. See the module comment. */
export type ServiceCodec = 'raw' | 'message';

/** Which kind of RPC a method is, named as go-grpc-prometheus's `grpc_type` label. */
export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** Bytes to a Buffer without copying (grpc-js writes responses with Buffer#copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const identityDeserialize = (b: Buffer): Buffer => b;
const rawSerialize = (b: Uint8Array): Buffer => asBuffer(b);

/** The RPC kind of a protobufjs method. */
export function grpcTypeOf(m: protobuf.Method): GrpcType {
  if (m.requestStream) return m.responseStream ? 'bidi_stream' : 'client_stream';
  return m.responseStream ? 'server_stream' : 'unary';
}

/**
 * Builds the grpc-js definition of service `fullName` (e.g. "etcdserverpb.KV"); paths are
 * `/etcdserverpb.KV/Range`, keys are the proto method names ("Range"), `originalName` the lowerCamel form.
 * Throws if the service is not in the protobufjs root.
 */
export function buildServiceDefinition(fullName: string, codec: ServiceCodec): ServiceDefinition {
  const svc = root.lookupService(fullName);
  svc.resolveAll();
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of svc.methodsArray) {
    const base = {
      path: `/${fullName}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
    };
    if (codec === 'raw') {
      def[m.name] = {
        ...base,
        requestSerialize: rawSerialize as (v: unknown) => Buffer,
        requestDeserialize: identityDeserialize,
        responseSerialize: rawSerialize as (v: unknown) => Buffer,
        responseDeserialize: identityDeserialize,
      };
    } else {
      const req = m.resolvedRequestType as protobuf.Type;
      const res = m.resolvedResponseType as protobuf.Type;
      def[m.name] = {
        ...base,
        requestSerialize: (v: unknown) => asBuffer(req.encode(v as object).finish()),
        requestDeserialize: (b: Buffer) => req.decode(b),
        responseSerialize: (v: unknown) => asBuffer(res.encode(v as object).finish()),
        responseDeserialize: (b: Buffer) => res.decode(b),
      };
    }
  }
  return def as ServiceDefinition;
}

/** Fully qualified names of the services etcd 3.4 serves on its client port. */
export const SERVICE_NAMES = {
  KV: 'etcdserverpb.KV',
  Watch: 'etcdserverpb.Watch',
  Lease: 'etcdserverpb.Lease',
  Cluster: 'etcdserverpb.Cluster',
  Maintenance: 'etcdserverpb.Maintenance',
  Auth: 'etcdserverpb.Auth',
  Lock: 'v3lockpb.Lock',
  Election: 'v3electionpb.Election',
} as const;

/** etcd api: etcdserverpb.KV, raw codec (Range/Put/DeleteRange/Txn/Compact). */
export const KvService: ServiceDefinition = buildServiceDefinition(SERVICE_NAMES.KV, 'raw');
/** etcd api: etcdserverpb.Maintenance, raw codec. */
export const MaintenanceService: ServiceDefinition = buildServiceDefinition(SERVICE_NAMES.Maintenance, 'raw');
/** etcd api: etcdserverpb.Cluster, raw codec. */
export const ClusterService: ServiceDefinition = buildServiceDefinition(SERVICE_NAMES.Cluster, 'raw');
/** etcd api: etcdserverpb.Watch (bidi stream), raw codec; not served yet. */
export const WatchService: ServiceDefinition = buildServiceDefinition(SERVICE_NAMES.Watch, 'raw');
/** etcd api: etcdserverpb.Lease, raw codec; not served yet. */
export const LeaseService: ServiceDefinition = buildServiceDefinition(SERVICE_NAMES.Lease, 'raw');
/** etcd api: v3lockpb.Lock, raw codec; not served yet. */
export const LockService: ServiceDefinition = buildServiceDefinition(SERVICE_NAMES.Lock, 'raw');
/** etcd api: v3electionpb.Election, raw codec; not served yet. */
export const ElectionService: ServiceDefinition = buildServiceDefinition(SERVICE_NAMES.Election, 'raw');
