/**
 * Forwards one unary call, as raw protobuf bytes, to another member's client URL (etcd: a follower forwards
 * MemberPromote to the leader, which alone knows whether the learner caught up). The remote's gRPC status is
 * passed through unchanged. Source: etcd api: Cluster.MemberPromote.
 */
import * as grpc from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;

/**
 * Calls `path` (e.g. `/etcdserverpb.Cluster/MemberPromote`) on `url` (`http://host:port`) with `request` bytes;
 * resolves with the response bytes, rejects with the remote's ServiceError (code + details) or a deadline error
 * after `timeoutMs` (ms).
 */
export function forwardUnary(url: string, path: string, request: Uint8Array, timeoutMs: number): Promise<Buffer> {
  const u = new URL(url);
  const client = new grpc.Client(`${u.hostname}:${u.port}`, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(path, identity, identity, Buffer.from(request), { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res as Buffer);
    });
  });
}
