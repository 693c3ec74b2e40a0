/**
 * Raw gRPC (no etcdctl, no gateway) against etcd 3.4 and etcetera, the same steps, answers compared one by one:
 * - AuthDisable, UserChangePassword and RoleList, success and error cases (who may call them, unknown names, what a
 *   changed password does to logins, what disabling does to token-less calls);
 * - the Lease service with auth enabled and non-root users: LeaseGrant, LeaseKeepAlive, LeaseTimeToLive (with and
 *   without keys), LeaseLeases, LeaseRevoke and Put with a lease, including a lease whose attached keys the user may
 *   not write (etcd authApplierV3.checkLeasePuts).
 * Lease ids are chosen by the test; answers are recorded as `ok` plus the fields compared. The steps run against a
 * single member, then against a follower of a 3-member cluster (its Lease calls go to the leader, tokens included).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { LeaseClient } from '../lease/lease-client';
import { agreedLeader, endpointStatus } from '../helpers/etcdctl';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const handles: ServerHandle[] = [];
after(async () => { await Promise.all(handles.map((h) => h.stop())); });

const b = (s: string): Buffer => Buffer.from(s);
/** A gRPC answer as compared: `<code> <details>` or `ok` plus id-free fields. */
type Outcome = string;

/** The steps against one member, or against a follower of a 3-member cluster (`members` 3). */
async function scenario(kind: ServerKind, members = 1): Promise<Record<string, Outcome>> {
  const h = await startServer(kind, { members });
  handles.push(h);
  let endpoint = h.clientUrl;
  if (members > 1) {
    const leaderId = await agreedLeader(h.endpoints);
    const hostPort = (u: string): string => u.replace(/^[a-z]+:\/\//, '');
    const leaderAt = hostPort((await endpointStatus(h.endpoints)).find((s) => s.id === leaderId)!.endpoint);
    endpoint = h.endpoints.find((e) => hostPort(e) !== leaderAt)!;
  }
  const c = new RawClient(endpoint);
  const l = new LeaseClient(endpoint);
  const out: Record<string, Outcome> = {};
  const errText = (e: { code: number; details: string }): string => `${e.code} ${e.details}`;
  /** One compared call: `show` picks the id-free fields of a success. */
  const step = async (name: string, token: string | undefined, service: string, method: string, req: object, show: (r: any) => unknown = () => ''): Promise<any> => {
    c.token = token;
    const r = await c.settle(service, method, req);
    out[name] = r.err !== undefined ? errText(r.err) : `ok ${JSON.stringify(show(r.ok))}`.trimEnd();
    return r.ok;
  };
  const leaseStep = async <R>(name: string, token: string | undefined, call: () => Promise<R>, show: (r: R) => unknown = () => ''): Promise<R | undefined> => {
    l.token = token;
    const r = await l.settle(call());
    out[name] = r.err !== undefined ? errText(r.err) : `ok ${JSON.stringify(show(r.ok as R))}`.trimEnd();
    return r.ok;
  };
  const must = async (token: string | undefined, service: string, method: string, req: object): Promise<any> => {
    c.token = token;
    return c.call(service, method, req);
  };
  const login = async (name: string, password: string): Promise<string> =>
    String(((await must(undefined, 'Auth', 'Authenticate', { name, password })) as { token: string }).token);
  const keys = (r: { keys?: Buffer[] }): string[] => (r.keys ?? []).map((k) => Buffer.from(k).toString()).sort();
  try {
    // Users: root; alice may read and write /app/; bob may only read /app/.
    await must(undefined, 'Auth', 'UserAdd', { name: 'root', password: 'rootpw' });
    await must(undefined, 'Auth', 'RoleAdd', { name: 'root' });
    await must(undefined, 'Auth', 'UserGrantRole', { user: 'root', role: 'root' });
    for (const [role, permType] of [['app-rw', 2], ['app-ro', 0]] as const) {
      await must(undefined, 'Auth', 'RoleAdd', { name: role });
      await must(undefined, 'Auth', 'RoleGrantPermission', { name: role, perm: { permType, key: b('/app/'), rangeEnd: b('/app0') } });
    }
    await must(undefined, 'Auth', 'UserAdd', { name: 'alice', password: 'apw' });
    await must(undefined, 'Auth', 'UserGrantRole', { user: 'alice', role: 'app-rw' });
    await must(undefined, 'Auth', 'UserAdd', { name: 'bob', password: 'bpw' });
    await must(undefined, 'Auth', 'UserGrantRole', { user: 'bob', role: 'app-ro' });

    // Before auth is enabled: everything open, changing a password included.
    await step('roleListOpen', undefined, 'Auth', 'RoleList', {}, (r) => r.roles);
    await step('changePwOpen', undefined, 'Auth', 'UserChangePassword', { name: 'bob', password: 'bpw2' });
    await step('changePwOpenNoUser', undefined, 'Auth', 'UserChangePassword', { name: 'nobody', password: 'x' });
    await step('changePwOpenEmptyName', undefined, 'Auth', 'UserChangePassword', { name: '', password: 'x' });
    await step('disableWhenDisabled', undefined, 'Auth', 'AuthDisable', {});
    await must(undefined, 'Auth', 'AuthEnable', {});

    const root = await login('root', 'rootpw');
    let alice = await login('alice', 'apw');
    await step('bobOldPassword', undefined, 'Auth', 'Authenticate', { name: 'bob', password: 'bpw' });
    const bob = await login('bob', 'bpw2');

    // RoleList.
    await step('roleListRoot', root, 'Auth', 'RoleList', {}, (r) => r.roles);
    await step('roleListAlice', alice, 'Auth', 'RoleList', {});
    await step('roleListNoToken', undefined, 'Auth', 'RoleList', {});
    await step('roleListBadToken', 'not-a-token', 'Auth', 'RoleList', {});

    // UserChangePassword.
    await step('changePwRoot', root, 'Auth', 'UserChangePassword', { name: 'alice', password: 'apw2' });
    await step('aliceOldPassword', undefined, 'Auth', 'Authenticate', { name: 'alice', password: 'apw' });
    await step('aliceNewPassword', undefined, 'Auth', 'Authenticate', { name: 'alice', password: 'apw2' });
    // A changed password revokes the user's simple tokens.
    await step('aliceOldTokenAfterChange', alice, 'KV', 'Range', { key: b('/app/x') }, (r) => r.count);
    alice = await login('alice', 'apw2');
    await step('changePwSelf', bob, 'Auth', 'UserChangePassword', { name: 'bob', password: 'bpw3' });
    await step('changePwOther', bob, 'Auth', 'UserChangePassword', { name: 'alice', password: 'x' });
    await step('changePwNoUser', root, 'Auth', 'UserChangePassword', { name: 'nobody', password: 'x' });
    await step('changePwNoToken', undefined, 'Auth', 'UserChangePassword', { name: 'alice', password: 'x' });

    // LeaseGrant by each caller.
    // Ids are chosen by the client: etcd's own are above 2^53 and the test client reads int64 as numbers.
    await leaseStep('grantAlice', alice, () => l.grant(60, 201), (r) => [r.ID, r.TTL]);
    await leaseStep('grantBob', bob, () => l.grant(60, 202), (r) => [r.ID, r.TTL]);
    await leaseStep('grantNoToken', undefined, () => l.grant(60, 203), (r) => [r.ID, r.TTL]);
    await leaseStep('grantBadToken', 'not-a-token', () => l.grant(60, 204), (r) => [r.ID, r.TTL]);
    await leaseStep('grantRoot', root, () => l.grant(60, 205), (r) => [r.ID, r.TTL]);
    // Two leases granted by root: one for alice's keys, one holding a key outside her range.
    l.token = root;
    const aliceLease = await l.grant(60, 101);
    const rootLease = await l.grant(60, 102);

    // Keys on the leases: root's lease holds a key outside alice's range.
    await step('putSecretOnRootLease', root, 'KV', 'Put', { key: b('/secret'), value: b('s'), lease: rootLease.ID });
    await step('putAliceOnOwnLease', alice, 'KV', 'Put', { key: b('/app/a'), value: b('a'), lease: aliceLease.ID });
    await step('putAliceOnRootLease', alice, 'KV', 'Put', { key: b('/app/b'), value: b('b'), lease: rootLease.ID });
    await step('putBobWithLease', bob, 'KV', 'Put', { key: b('/app/c'), value: b('c'), lease: aliceLease.ID });
    await step('putAliceUnknownLease', alice, 'KV', 'Put', { key: b('/app/d'), value: b('d'), lease: 999 });
    await step('putAliceOutsideWithLease', alice, 'KV', 'Put', { key: b('/secret2'), value: b('d'), lease: aliceLease.ID });
    await step('txnAliceOnRootLease', alice, 'KV', 'Txn', { success: [{ requestPut: { key: b('/app/e'), value: b('e'), lease: rootLease.ID } }] });

    // LeaseTimeToLive, with and without keys.
    const ttlShow = (r: { grantedTTL: number; keys?: Buffer[] }) => ({ grantedTTL: r.grantedTTL, keys: keys(r) });
    await leaseStep('ttlAliceOwn', alice, () => l.timeToLive(aliceLease.ID, false), ttlShow);
    await leaseStep('ttlAliceOwnKeys', alice, () => l.timeToLive(aliceLease.ID, true), ttlShow);
    await leaseStep('ttlAliceRoot', alice, () => l.timeToLive(rootLease.ID, false), ttlShow);
    await leaseStep('ttlAliceRootKeys', alice, () => l.timeToLive(rootLease.ID, true), ttlShow);
    await leaseStep('ttlBobAliceKeys', bob, () => l.timeToLive(aliceLease.ID, true), ttlShow);
    await leaseStep('ttlNoToken', undefined, () => l.timeToLive(aliceLease.ID, true), ttlShow);
    await leaseStep('ttlBadToken', 'not-a-token', () => l.timeToLive(aliceLease.ID, true), ttlShow);

    // LeaseLeases: the number of leases each caller is shown.
    await leaseStep('leasesRoot', root, () => l.leases(), (r: any) => r.leases.map((x: { ID: number }) => x.ID).sort());
    await leaseStep('leasesAlice', alice, () => l.leases(), (r: any) => r.leases.map((x: { ID: number }) => x.ID).sort());
    await leaseStep('leasesBob', bob, () => l.leases(), (r: any) => r.leases.map((x: { ID: number }) => x.ID).sort());
    await leaseStep('leasesNoToken', undefined, () => l.leases(), (r: any) => r.leases.map((x: { ID: number }) => x.ID).sort());
    await leaseStep('leasesBadToken', 'not-a-token', () => l.leases(), (r: any) => r.leases.map((x: { ID: number }) => x.ID).sort());

    // LeaseKeepAlive: one renewal on a stream.
    const kaShow = (r: { TTL: number }[]) => r.map((x) => x.TTL);
    await leaseStep('keepAliveAliceOwn', alice, () => l.keepAlive([aliceLease.ID], 10_000), kaShow);
    await leaseStep('keepAliveAliceRoot', alice, () => l.keepAlive([rootLease.ID], 10_000), kaShow);
    await leaseStep('keepAliveBob', bob, () => l.keepAlive([aliceLease.ID], 10_000), kaShow);
    await leaseStep('keepAliveNoToken', undefined, () => l.keepAlive([aliceLease.ID], 10_000), kaShow);
    await leaseStep('keepAliveBadToken', 'not-a-token', () => l.keepAlive([aliceLease.ID], 10_000), kaShow);

    // LeaseRevoke: write permission on every attached key.
    await leaseStep('revokeBobAlice', bob, () => l.revoke(aliceLease.ID));
    await leaseStep('revokeAliceRoot', alice, () => l.revoke(rootLease.ID));
    await leaseStep('revokeNoToken', undefined, () => l.revoke(aliceLease.ID));
    await leaseStep('revokeAliceOwn', alice, () => l.revoke(aliceLease.ID));
    await leaseStep('revokeAliceUnknown', alice, () => l.revoke(aliceLease.ID));
    await step('keyGoneWithLease', root, 'KV', 'Range', { key: b('/app/a') }, (r) => r.count);

    // AuthDisable: refused to non-root and to nobody, then done by root.
    await step('disableAlice', alice, 'Auth', 'AuthDisable', {});
    await step('disableNoToken', undefined, 'Auth', 'AuthDisable', {});
    await step('disableBadToken', 'not-a-token', 'Auth', 'AuthDisable', {});
    await step('disableRoot', root, 'Auth', 'AuthDisable', {});
    await step('rangeNoTokenAfterDisable', undefined, 'KV', 'Range', { key: b('/secret') }, (r) => r.count);
    await step('authenticateAfterDisable', undefined, 'Auth', 'Authenticate', { name: 'root', password: 'rootpw' });
    await step('disableAgain', root, 'Auth', 'AuthDisable', {});
    await step('roleListAfterDisable', alice, 'Auth', 'RoleList', {}, (r) => r.roles);
  } finally {
    c.close();
    l.close();
  }
  return out;
}

test('AuthDisable, UserChangePassword, RoleList and the Lease service with auth: raw gRPC, etcd 3.4 and etcetera answer alike', { skip, timeout: 120_000 }, async () => {
  const [etcd, etcetera] = await Promise.all([scenario('etcd'), scenario('etcetera')]);
  // What etcd 3.4 answered when this was written (so a change on either side is noticed): the Lease service checks
  // nothing but the token, except LeaseRevoke and a Put attaching a key to a lease (write on every attached key);
  // a Put inside a Txn is not checked against its lease's keys.
  assert.deepEqual(
    [etcd.grantBob, etcd.grantNoToken, etcd.grantBadToken, etcd.ttlBobAliceKeys, etcd.leasesNoToken, etcd.keepAliveBob, etcd.keepAliveBadToken],
    ['ok [202,60]', 'ok [203,60]', '16 etcdserver: invalid auth token', 'ok {"grantedTTL":60,"keys":["/app/a"]}', 'ok [101,102,201,202,203,205]', 'ok [60]', 'ok [60]']);
  assert.deepEqual(
    [etcd.putAliceOnRootLease, etcd.txnAliceOnRootLease, etcd.revokeBobAlice, etcd.revokeNoToken, etcd.changePwSelf, etcd.disableAlice, etcd.aliceOldTokenAfterChange],
    ['7 etcdserver: permission denied', 'ok ""', '7 etcdserver: permission denied', '3 etcdserver: user name is empty', '7 etcdserver: permission denied',
      '7 etcdserver: permission denied', '16 etcdserver: invalid auth token']);
  assert.deepEqual(etcetera, etcd);
});

test('the same steps through a follower of a 3-member cluster (Lease calls forwarded to the leader): etcd 3.4 and etcetera alike', { skip, timeout: 120_000 }, async () => {
  const [etcd, etcetera] = await Promise.all([scenario('etcd', 3), scenario('etcetera', 3)]);
  assert.deepEqual(etcetera, etcd);
});
