/**
 * Normalisation and comparison of decoded etcd responses for differential tests.
 */

/** Bytes → readable string: the text itself if printable ASCII, else "hex:…". Empty stays "". */
export function showBytes(b: Uint8Array): string {
  const buf = Buffer.from(b);
  for (const c of buf) if (c < 0x20 || c > 0x7e) return `hex:${buf.toString('hex')}`;
  return buf.toString('latin1');
}

/** Header fields that legitimately differ between two independent servers. */
const VOLATILE_HEADER = new Set(['clusterId', 'memberId', 'raftTerm']);

/**
 * Deep copy with bytes rendered by showBytes, object keys sorted, and the volatile header fields
 * (cluster_id, member_id, raft_term) of every `header` at any depth replaced by "<set>" when
 * non-zero (kept as 0 when zero: etcd 3.4 leaves them zero in the headers nested inside a
 * TxnResponse, and that must match too).
 */
export function normalize(v: unknown, parentKey = ''): unknown {
  if (v instanceof Uint8Array) return showBytes(v);
  if (Array.isArray(v)) return v.map((x) => normalize(x, parentKey));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      if (parentKey === 'header' && VOLATILE_HEADER.has(k)) { out[k] = (v as any)[k] ? '<set>' : 0; continue; }
      out[k] = normalize((v as Record<string, unknown>)[k], k);
    }
    return out;
  }
  return v;
}

/** Canonical JSON of a normalized value. */
export function canon(v: unknown): string {
  return JSON.stringify(normalize(v));
}

/** Pretty JSON (bytes readable) for failure messages. */
export function pretty(v: unknown): string {
  return JSON.stringify(normalize(v), null, 2);
}

/** The first path at which two normalized values differ, e.g. "responses[1].responseRange.kvs[0].modRevision". */
export function firstDifference(a: unknown, b: unknown, at = ''): string | undefined {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return at || '(root)';
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at}.length (${a.length} vs ${b.length})`;
    for (let i = 0; i < a.length; i++) { const d = firstDifference(a[i], b[i], `${at}[${i}]`); if (d) return d; }
    return undefined;
  }
  if (a && typeof a === 'object') {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    for (const k of [...keys].sort()) {
      const d = firstDifference((a as any)[k], (b as any)[k], at ? `${at}.${k}` : k);
      if (d) return d;
    }
    return undefined;
  }
  return a === b ? undefined : `${at || '(root)'} (${JSON.stringify(a)} vs ${JSON.stringify(b)})`;
}
