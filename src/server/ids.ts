/**
 * Deterministic member and cluster IDs, so every member of a statically bootstrapped cluster reports
 * the same IDs (etcd: membership/member.go computes the member ID from its peer URLs and the cluster token;
 * the cluster ID from the sorted member IDs). Ours keep the idea, truncated to 53 bits so IDs stay JS-safe
 * integers (docs/architecture.md "Raft IDs"); the exact values differ from etcd's.
 */
import { createHash } from 'node:crypto';

/** 2^53 - 1: every ID we hand out fits a JS number exactly. */
const ID_MASK_HIGH = 0x1f_ffff; // top 21 bits of 53

function hashToId(parts: string[]): number {
  const digest = createHash('sha1').update(parts.join('\n')).digest();
  const high = digest.readUInt32BE(0) & ID_MASK_HIGH;
  const low = digest.readUInt32BE(4);
  const id = high * 0x1_0000_0000 + low;
  return id === 0 ? 1 : id; // 0 means "none" in Raft
}

/** Member ID from a member's peer URLs and the cluster token (`--initial-cluster-token`). Always ≥ 1. */
export function memberIdFor(peerUrls: readonly string[], clusterToken: string): number {
  return hashToId(['member', clusterToken, ...[...peerUrls].sort()]);
}

/** Cluster ID from every member's ID and the token. Always ≥ 1. */
export function clusterIdFor(memberIds: readonly number[], clusterToken: string): number {
  return hashToId(['cluster', clusterToken, ...[...memberIds].sort((a, b) => a - b).map(String)]);
}

/** Formats an ID the way etcd prints it (lower-case hex, no padding). */
export function idToHex(id: number): string {
  return id.toString(16);
}
