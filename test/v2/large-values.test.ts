/**
 * v2 values past --max-request-bytes (differential against etcd 3.4 with `--enable-v2=true`): etcd proposes v2
 * requests without the v3 size check, so a value is bounded only by Go's 10 MiB form limit; one byte more is
 * 400 code 210 `http: POST too large`. Set, overwrite (prevNode carries the old big value), refresh (node and
 * prevNode both carry it), get, and delete compared answer by answer; then the etcetera member restarts and the
 * value is read back whole.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { hasEtcd, NO_ETCD } from '../helpers/servers';
import { storeIndex, v2, v2Pair, V2Normaliser, type HttpAnswer } from './v2-http';

const FORM_LIMIT_BYTES = 10 * 1024 * 1024;
// Started with the default --max-request-bytes (1.5 MiB), well below the values sent.
const pair = v2Pair();
let nEtcd: V2Normaliser;
let nEtc: V2Normaliser;

/** A form `value=…` of exactly `bytes` bytes, with a byte that needs percent-encoding at the front. */
const form = (bytes: number, fill: string): string => `value=%01${fill.repeat(bytes - 9)}`;

async function both(method: string, path: string, body?: string): Promise<[HttpAnswer, HttpAnswer]> {
  return Promise.all([v2(pair.etcd.clientUrl, method, path, body), v2(pair.etc.clientUrl, method, path, body)]);
}

function same(step: string, a: HttpAnswer, b: HttpAnswer): void {
  assert.deepEqual(nEtc.view(b, false), nEtcd.view(a, false), `${step}: etcd ${a.status} ${a.body.length} B, etcetera ${b.status} ${b.body.length} B`);
}

test('v2 values up to the 10 MiB form limit are accepted as etcd does; one byte more is 400/210', { skip: !hasEtcd() && NO_ETCD }, async () => {
  nEtcd = new V2Normaliser(await storeIndex(pair.etcd.clientUrl));
  nEtc = new V2Normaliser(await storeIndex(pair.etc.clientUrl));
  const steps: Array<[string, string, string | undefined]> = [
    ['PUT', '/v2/keys/big', form(2_000_000, 'a')],
    ['PUT', '/v2/keys/big', form(FORM_LIMIT_BYTES, 'b')],
    ['GET', '/v2/keys/big', undefined],
    ['PUT', '/v2/keys/big?refresh=true&ttl=100&prevExist=true', undefined],
    ['PUT', '/v2/keys/big?ttl=', form(FORM_LIMIT_BYTES + 1, 'c')],
    ['PUT', '/v2/keys/big', form(FORM_LIMIT_BYTES, '"')],
    ['DELETE', '/v2/keys/big', undefined],
    ['PUT', '/v2/keys/kept', form(FORM_LIMIT_BYTES - 100, 'd')],
  ];
  for (const [i, [method, path, body]] of steps.entries()) {
    const [a, b] = await both(method, path, body);
    same(`step ${i}: ${method} ${path}`, a, b);
    if (i === 1) assert.equal(b.status, 200);
    if (i === 4) assert.equal(JSON.parse(b.body).cause, 'http: POST too large');
  }
  await pair.etc.stop({ keepData: true });
  pair.etc = await pair.etc.restart();
  const got = await v2(pair.etc.clientUrl, 'GET', '/v2/keys/kept');
  assert.equal(got.status, 200);
  assert.equal((JSON.parse(got.body) as { node: { value: string } }).node.value, `\u0001${'d'.repeat(FORM_LIMIT_BYTES - 109)}`);
});
