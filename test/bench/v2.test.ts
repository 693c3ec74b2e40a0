/**
 * `etcetera-bench v2-set` / `v2-get` (the v2 keys API through autocannon) against etcd 3.4 and etcetera, both
 * started with --enable-v2=true: every request succeeds, the report counts them, and the keys set really exist
 * afterwards (read back with GET /v2/keys/<key>).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bench } from './cli-run';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';



const servers: ServerHandle[] = [];

describe('v2-set and v2-get against etcd 3.4 and etcetera (--enable-v2=true)', { skip: hasEtcd() ? false : NO_ETCD, timeout: 120000 }, () => {
  before(async () => {
    servers.push(...await Promise.all([startEtcd({ extraArgs: ['--enable-v2=true'] }), startEtcetera({ extraArgs: ['--enable-v2=true'] })]));
  });
  after(async () => { await Promise.all(servers.map((s) => s.stop())); });

  for (const i of [0, 1]) {
    test(['etcd', 'etcetera'][i]!, async () => {
      const srv = servers[i]!;
      const ep = srv.clientUrl.replace('http://', '');
      // 60 sets over 20 sequential keys: 0..19 zero-padded to 6 digits, each set three times.
      const set = await bench(['--endpoints', ep, '--conns', '4', '--clients', '4', 'v2-set', '--total', '60', '--key-size', '6', '--val-size', '32', '--key-space-size', '20', '--sequential-keys', '--json']);
      assert.equal(set.status, 0, set.stderr);
      const js = JSON.parse(set.stdout);
      assert.equal(js.command, 'v2-set');
      assert.equal(js.count, 60, 'all sets succeeded');
      assert.equal(js.errors, 0);
      assert.equal(js.histogram.reduce((a: number, b: { count: number }) => a + b.count, 0), 60);
      for (let k = 0; k < 20; k++) {
        const r = await fetch(`${srv.clientUrl}/v2/keys/${String(k).padStart(6, '0')}`);
        assert.equal(r.status, 200, `key ${k}`);
        const node = ((await r.json()) as { node: { value: string } }).node;
        assert.equal(node.value.length, 32);
        assert.match(node.value, /^[0-9a-f]+$/);
      }
      assert.equal((await fetch(`${srv.clientUrl}/v2/keys/000020`)).status, 404, 'nothing outside the key space');

      // The text report, etcd's layout, for a quorum get of a key that exists.
      const get = await bench(['--endpoints', ep, '--conns', '2', 'v2-get', '000003', '--quorum', '--total', '40']);
      assert.equal(get.status, 0, get.stderr);
      assert.match(get.stdout, /^bench with quorum get\n/);
      assert.match(get.stdout, /Summary:\n\s+Total:/);
      assert.match(get.stdout, /Requests\/sec:/);
      assert.match(get.stdout, /Response time histogram:/);
      assert.match(get.stdout, /Latency distribution:\n(\s+[\d.]+% in [\d.]+ secs\.?\n){8}/);
      assert.doesNotMatch(get.stdout, /Error distribution/);
      const local = JSON.parse((await bench(['--endpoints', ep, '--conns', '2', 'v2-get', '000003', '--total', '40', '--json'])).stdout);
      assert.equal(local.count, 40);
      assert.equal(local.errors, 0);

      // A missing key: every get is a 404, counted by status, and the run fails.
      const miss = await bench(['--endpoints', ep, '--conns', '1', 'v2-get', 'no/such/key', '--total', '5', '--json']);
      assert.equal(miss.status, 1);
      const jm = JSON.parse(miss.stdout);
      assert.equal(jm.count, 0);
      assert.equal(jm.errors, 5);
    });
  }
});
