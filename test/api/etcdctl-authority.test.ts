/**
 * A real etcetera member and etcd 3.4's etcdctl: `endpoint status` with an http:// endpoint makes etcdctl
 * dial passthrough:///http://127.0.0.1:PORT, i.e. `:authority: http://127.0.0.1:PORT`, which Node's nghttp2
 * resets with PROTOCOL_ERROR unless the client listener repairs it. Also: the host:port form, many normal
 * gRPC calls (etcd3 npm client), and raw sockets with bad starts that must not hurt the member.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startEtcetera, sutUnavailable, hasEtcdctl, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { H2_CLIENT_PREFACE, FrameType, FrameFlag } from '../../src/api/h2-authority';
import { H2_SNIFF_MAX_BYTES } from '../../src/api/client-listener';
import { RawH2, frame } from './h2-raw';

const built = sutUnavailable() === undefined || process.env.SUT === 'etcd' ? undefined : sutUnavailable();
const skip = built ?? (hasEtcdctl() ? undefined : NO_ETCDCTL);
let m: ServerHandle | undefined;
let memberIdHex = '';

before(async () => {
  if (skip) return;
  m = await startEtcetera({ name: 'auth1' });
  const st = await new RawClient(m.clientUrl).call('Maintenance', 'Status', {});
  memberIdHex = BigInt(st.header.memberId).toString(16);
});
after(async () => {
  await m?.stop();
  await killAllChildren();
});

const opts = { skip, timeout: 120_000 };
const port = (): number => Number(new URL(m!.clientUrl).port);

test('etcdctl --endpoints http://127.0.0.1:PORT endpoint status (simple and json)', opts, async () => {
  const r = await etcdctl(m!.clientUrl, ['endpoint', 'status']);
  assert.equal(r.code, 0, JSON.stringify(r));
  assert.match(r.stdout, new RegExp(`^${m!.clientUrl}, ${memberIdHex}, 3\\.4\\.\\d+, `), r.stdout);
  assert.doesNotMatch(r.stderr, /PROTOCOL_ERROR/);
  const j = await etcdctl(m!.clientUrl, ['endpoint', 'status', '-w', 'json']);
  assert.equal(j.code, 0, JSON.stringify(j));
  const parsed = JSON.parse(j.stdout);
  assert.equal(parsed[0].Endpoint, m!.clientUrl);
  assert.equal(BigInt(parsed[0].Status.header.member_id).toString(16), memberIdHex);
  assert.equal(parsed[0].Status.leader, parsed[0].Status.header.member_id);
});

test('etcdctl --endpoints 127.0.0.1:PORT endpoint status (table) still works', opts, async () => {
  const ep = `127.0.0.1:${port()}`;
  const r = await etcdctl(ep, ['endpoint', 'status', '-w', 'table']);
  assert.equal(r.code, 0, JSON.stringify(r));
  assert.match(r.stdout, new RegExp(`\\| ${ep.replace(/\./g, '\\.')} \\| ${memberIdHex} \\|`));
});

test('many normal gRPC calls (etcd3 npm client and grpc-js) still work', opts, async () => {
  const c = new Etcd3({ hosts: m!.clientUrl });
  try {
    for (let i = 0; i < 200; i++) assert.equal(await c.get(`/api-test/missing-${i}`).string(), null);
    const all = await Promise.all(Array.from({ length: 100 }, (_, i) => c.getAll().prefix(`/api-test/${i}`).keys()));
    assert.equal(all.length, 100);
    const members = await c.cluster.memberList({});
    assert.equal(BigInt(members.members[0].ID).toString(16), memberIdHex);
  } finally { c.close(); }
  // New connections each time: every one goes through the sniff.
  for (let i = 0; i < 30; i++) {
    const rc = new RawClient(m!.clientUrl);
    const st = await rc.call('Maintenance', 'Status', {});
    assert.equal(BigInt(st.header.memberId).toString(16), memberIdHex);
    (rc as unknown as { client: { close(): void } }).client.close();
  }
});

test('raw sockets with bad HTTP/2 starts are closed; the member keeps serving', opts, async () => {
  const starts: Array<[string, (c: RawH2) => void]> = [
    ['garbage after preface', (c) => c.write(Buffer.concat([H2_CLIENT_PREFACE, Buffer.from('garbage garbage garbage garbage')]))],
    ['malformed first HEADERS', (c) => c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))]))],
    ['oversized first HEADERS', (c) => {
      c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, 0, 1, Buffer.alloc(16384, 0x82))]));
      for (let i = 0; i < H2_SNIFF_MAX_BYTES / 16384 + 1; i++) c.write(frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16384, 0x82)));
    }],
    ['malformed HEADERS on a repaired connection', (c) => {
      c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get(`http://127.0.0.1:${port()}`, '/nope')))]));
      c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, Buffer.from([0xfe])));
    }],
  ];
  for (const [name, send] of starts) {
    const c = await RawH2.connect(port());
    send(c);
    await c.waitClosed(5000).catch((e) => { throw new Error(`${name}: ${(e as Error).message}`); });
  }
  assert.ok(m!.isRunning(), m!.output().slice(-2000));
  const r = await etcdctl(m!.clientUrl, ['endpoint', 'status']);
  assert.equal(r.code, 0, JSON.stringify(r));
  const st = await new RawClient(m!.clientUrl).call('Maintenance', 'Status', {});
  assert.equal(BigInt(st.header.memberId).toString(16), memberIdHex);
});
