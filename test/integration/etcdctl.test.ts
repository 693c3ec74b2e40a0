/**
 * etcdctl (v3 API) command lines run against the reference etcd 3.4 and against the system under
 * test (env SUT=etcetera|etcd), outputs compared after normalising only what must differ between
 * two independent servers: member/cluster IDs, URLs, names, db size, raft term/index, durations,
 * and the timestamps/targets of etcdctl's own retry log lines.
 *
 * One pair of fresh servers serves the whole file; every case works in its own key prefix and every
 * mutation runs on both sides in the same order, so revisions line up.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startSut, sutKind, sutUnavailable, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, ServerHandle } from '../helpers/servers';
import { etcdctl, EtcdctlResult } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';

const skip = !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : sutUnavailable();

let ref: ServerHandle | undefined;
let sut: ServerHandle | undefined;

before(async () => {
  if (skip) return;
  // Same member name on both sides; it is normalised anyway.
  [ref, sut] = await Promise.all([startEtcd({ name: 'node1' }), startSut({ name: 'node1' })]);
});
after(async () => {
  await Promise.all([ref?.stop(), sut?.stop()]);
  await killAllChildren();
});

/** Normalises one etcdctl output stream for server `h`. */
function norm(text: string, h: ServerHandle): string {
  const hostPort = (u: string): string => u.replace(/^http:\/\//, '');
  let s = text;
  s = s.split(h.clientUrl).join('<CLIENT_URL>').split(hostPort(h.clientUrl)).join('<CLIENT_ADDR>');
  s = s.split(h.peerUrl).join('<PEER_URL>');
  s = s.split(h.name).join('<NAME>');
  // etcdctl's zap retry warnings: keep level/msg/error, drop ts/caller/target.
  s = s.replace(/^\{"level".*\}$/gm, (line) => {
    try { const j = JSON.parse(line); return `LOG ${j.level} ${j.msg} ${j.error ?? ''}`; } catch { return line; }
  });
  // JSON numbers that identify members/clusters or depend on the raft log / db file.
  s = s.replace(/"(cluster_id|member_id|leader|ID|ClusterID|MemberID)":\s*\d+/g, '"$1":"<ID>"');
  s = s.replace(/"(raft_term|raftTerm)":\s*\d+/g, '"$1":"<TERM>"');
  s = s.replace(/"(raftIndex|raftAppliedIndex)":\s*\d+/g, '"$1":"<INDEX>"');
  s = s.replace(/"(dbSize|dbSizeInUse)":\s*\d+/g, '"$1":"<SIZE>"');
  s = s.replace(/"took":"[^"]*"/g, '"took":"<DUR>"');
  s = s.replace(/took = [0-9.]+[a-zµ]+/g, 'took = <DUR>');
  // "-w fields" output
  s = s.replace(/^"(ClusterID|MemberID|RaftTerm)" : \d+$/gm, '"$1" : <X>');
  // Table output: collapse borders and padding (column widths depend on URL lengths).
  s = s.split('\n').filter((l) => !/^\+[-+]+\+$/.test(l)).map((l) => (l.startsWith('|') ? l.split('|').map((c) => c.trim()).join('|') : l)).join('\n');
  // Version: compare major.minor only.
  s = s.replace(/\b3\.4\.\d+\b/g, '3.4.x');
  return s;
}

/** Normalises `endpoint status` simple/table rows: ID, version, db size, term, index, applied index. */
function normStatusRow(s: string): string {
  return s.split('\n').map((line) => {
    const sep = line.includes('|') ? '|' : ', ';
    const cells = line.split(sep);
    const base = line.includes('|') ? 1 : 0;
    if (cells.length < base + 9 || !cells[base].includes('<CLIENT')) return line;
    for (const i of [1, 3, 6, 7, 8]) cells[base + i] = '<V>';
    return cells.join(sep);
  }).join('\n');
}

/** Member list simple/table rows: the hex ID (printed with %x, so its width varies). */
function normHexIds(s: string): string { return s.replace(/^[0-9a-f]{1,16}(?=, )/gm, '<ID>').replace(/^\|[0-9a-f]{1,16}\|/gm, '|<ID>|'); }

interface RunOpts { input?: string; post?: (s: string) => string }

/** Runs one etcdctl command line on both servers and asserts equal normalised results. Returns ref's raw result. */
async function both(args: string[], o: RunOpts = {}): Promise<EtcdctlResult> {
  const [a, b] = await Promise.all([etcdctl(ref!.clientUrl, args, { input: o.input }), etcdctl(sut!.clientUrl, args, { input: o.input })]);
  const post = o.post ?? ((x: string) => x);
  const na = { code: a.code, stdout: post(norm(a.stdout, ref!)), stderr: post(norm(a.stderr, ref!)) };
  const nb = { code: b.code, stdout: post(norm(b.stdout, sut!)), stderr: post(norm(b.stderr, sut!)) };
  assert.deepEqual(nb, na, `etcdctl ${args.join(' ')}${o.input ? ` <<< ${JSON.stringify(o.input)}` : ''}\n--- etcd 3.4 (raw) ---\n${JSON.stringify(a)}\n--- ${sutKind()} (raw) ---\n${JSON.stringify(b)}`);
  return a;
}

/** header.revision of a `-w json` output. */
function jsonRev(r: EtcdctlResult): number { return JSON.parse(r.stdout).header.revision; }

const opts = { skip, timeout: 120_000 };

test('put / get basics, --prefix, --from-key, --prev-kv, -w json, --hex, -w fields', opts, async () => {
  await both(['put', '/c1/a', '1']);
  await both(['put', '/c1/b', '2']);
  await both(['put', '/c1/c', '3']);
  await both(['put', '/c1/a', '11', '--prev-kv']);
  await both(['put', '/c1/d', 'new', '--prev-kv']);
  await both(['put', '/c1/e', '', '-w', 'json']);
  await both(['get', '/c1/a']);
  await both(['get', '/c1/missing']);
  await both(['get', '/c1/', '--prefix']);
  await both(['get', '/c1/', '--prefix', '-w', 'json']);
  await both(['get', '/c1/a', '/c1/c']);
  await both(['get', '/c1/b', '--from-key']);
  await both(['get', '/c1/b', '--from-key', '--keys-only']);
  await both(['get', '/c1/', '--prefix', '--hex']);
  await both(['get', '/c1/a', '-w', 'fields']);
  await both(['get', '/c1/', '--prefix', '-w', 'table']);
  await both(['get', '/c1/a', '--consistency=s']);
  await both(['put', '/c1/f', '--', '-dash-value']);
  await both(['put', '/c1/stdin'], { input: 'from stdin' });
  await both(['get', '/c1/stdin', '--print-value-only']);
});

test('get --rev (past, current, future)', opts, async () => {
  const r1 = jsonRev(await both(['put', '/c2/k', 'v1', '-w', 'json']));
  await both(['put', '/c2/k', 'v2']);
  const r3 = jsonRev(await both(['put', '/c2/k', 'v3', '-w', 'json']));
  await both(['get', '/c2/k', `--rev=${r1}`]);
  await both(['get', '/c2/k', `--rev=${r1 - 1}`]);
  await both(['get', '/c2/k', `--rev=${r3}`, '-w', 'json']);
  await both(['get', '/c2/k', `--rev=${r3 + 1000}`]);
});

test('--sort-by × --order, --limit, --keys-only, --print-value-only, count', opts, async () => {
  // Distinct create/mod revisions, versions and values in non-key order.
  await both(['put', '/c3/m', 'b']);
  await both(['put', '/c3/z', 'a']);
  await both(['put', '/c3/a', 'c']);
  await both(['put', '/c3/m', 'd']);
  await both(['put', '/c3/m', 'e']);
  await both(['put', '/c3/z', 'f']);
  await both(['put', '/c3/q', 'e']); // value tie with /c3/m
  for (const by of ['', 'KEY', 'CREATE', 'MODIFY', 'VALUE', 'VERSION']) {
    for (const order of ['', 'ASCEND', 'DESCEND']) {
      const args = ['get', '/c3/', '--prefix'];
      if (by) args.push(`--sort-by=${by}`);
      if (order) args.push(`--order=${order}`);
      await both(args);
      await both([...args, '--limit=2', '-w', 'json']);
    }
  }
  await both(['get', '/c3/', '--prefix', '--limit=2']);
  await both(['get', '/c3/', '--prefix', '--limit=2', '-w', 'json']); // count is the full range, more=true
  await both(['get', '/c3/', '--prefix', '--limit=10', '-w', 'json']);
  await both(['get', '/c3/', '--prefix', '--keys-only']);
  await both(['get', '/c3/', '--prefix', '--keys-only', '-w', 'json']);
  await both(['get', '/c3/', '--prefix', '--print-value-only']);
  await both(['get', '/c3/', '--prefix', '--print-value-only', '--keys-only']);
  // etcdctl 3.4 has no --count-only (added in 3.5): both sides must reject it the same way.
  await both(['get', '/c3/', '--prefix', '--count-only']);
  await both(['get', '/c3/', '--order=SIDEWAYS']);
  await both(['get', '/c3/', '--sort-by=COLOR']);
});

test('del: single, range, --prefix --prev-kv, --from-key, missing', opts, async () => {
  for (const k of ['a', 'b', 'c', 'd', 'e', 'f']) await both(['put', `/c4/${k}`, `v-${k}`]);
  await both(['put', '/c4x', 'outside']);
  await both(['del', '/c4/a']);
  await both(['del', '/c4/a']);
  await both(['del', '/c4/b', '/c4/d', '--prev-kv']);
  await both(['del', '/c4/', '--prefix', '--prev-kv']);
  await both(['del', '/c4/', '--prefix', '-w', 'json']);
  await both(['put', '/c4/q', 'again']);
  await both(['del', '/c4/p', '--from-key', '--prev-kv', '-w', 'json']);
  await both(['get', '', '--from-key', '--keys-only']);
});

test('txn (stdin format): compares, success and failure branches, -w json, -i', opts, async () => {
  await both(['put', '/c5/k', 'v1']);
  await both(['put', '/c5/n', '10']);
  // success branch
  await both(['txn'], { input: 'value("/c5/k") = "v1"\nversion("/c5/n") > "0"\n\nput /c5/k v2\nget /c5/n\ndel /c5/zz\n\nput /c5/k failed\n\n' });
  // failure branch
  await both(['txn'], { input: 'value("/c5/k") = "v1"\n\nput /c5/k wrong\n\nput /c5/k v3\nget /c5/ --prefix\nput /c5/other x\n\n' });
  // create / mod compares, json output (nested response headers)
  await both(['txn', '-w', 'json'], { input: 'create("/c5/k") > "0"\nmod("/c5/k") < "100000"\n\nput /c5/k v4\nget /c5/k\ndel /c5/other --prev-kv\n\n\n' });
  await both(['txn', '-w', 'json'], { input: 'version("/c5/missing") = "0"\n\nget /c5/ --prefix --limit=1\n\n\n' });
  // no compares: always success
  await both(['txn'], { input: '\nput /c5/a 1\n\n\n' });
  // empty branches
  await both(['txn'], { input: 'value("/c5/k") = "nope"\n\n\n\n' });
  // duplicate key in one branch → server error
  await both(['txn'], { input: '\nput /c5/d 1\nput /c5/d 2\n\n\n' });
  // (no lease() compare: etcdctl 3.4 itself panics parsing `lease("k") = "0"` — "panic: bad value" in clientv3.mustInt64)
  // interactive mode prints prompts
  await both(['txn', '-i'], { input: 'value("/c5/k") = "v4"\n\nput /c5/k v5\n\nput /c5/k v6\n\n' });
  // bad syntax (client side)
  await both(['txn'], { input: 'value(/c5/k) == v4\n\n\n\n' });
  await both(['get', '/c5/', '--prefix']);
});

test('compaction: compacted read error text, repeated compaction, future compaction, --physical', opts, async () => {
  const r1 = jsonRev(await both(['put', '/c6/k', 'a', '-w', 'json']));
  await both(['put', '/c6/k', 'b']);
  const r3 = jsonRev(await both(['put', '/c6/k', 'c', '-w', 'json']));
  await both(['compaction', String(r3 - 1)]);
  await both(['get', '/c6/k', `--rev=${r1}`]);
  await both(['get', '/c6/k', `--rev=${r3 - 1}`]);
  await both(['get', '/c6/k', `--rev=${r3}`]);
  await both(['compaction', String(r1)]);
  await both(['compaction', String(r3 + 1000)]);
  await both(['compaction', '--physical', String(r3)]);
  await both(['get', '/c6/k', `--rev=${r3 - 1}`, '-w', 'json']);
});

test('errors: empty key, future revision, bad arguments', opts, async () => {
  await both(['put', '', 'v']);
  await both(['get', '']);
  await both(['del', '']);
  await both(['get', '/c7/k', '--rev=99999999']);
  await both(['put']);
  await both(['get']);
  await both(['get', '/c7/k', '--rev=-5']);
});

test('endpoint status (simple, json, table)', opts, async () => {
  await both(['endpoint', 'status'], { post: normStatusRow });
  await both(['endpoint', 'status', '-w', 'json']);
  await both(['endpoint', 'status', '-w', 'table'], { post: normStatusRow });
});

test('endpoint health (simple, json)', opts, async () => {
  await both(['endpoint', 'health']);
  await both(['endpoint', 'health', '-w', 'json']);
});

test('member list (simple, json, table)', opts, async () => {
  await both(['member', 'list'], { post: normHexIds });
  await both(['member', 'list', '-w', 'json']);
  await both(['member', 'list', '-w', 'table'], { post: normHexIds });
});
