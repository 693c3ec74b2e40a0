/**
 * Fault injection against real member processes (issue 8): a seeded nemesis run of a 3-member cluster — SIGKILL and
 * restart, SIGSTOP and SIGCONT, symmetric and one-way partitions through peer proxies — under concurrent put / get /
 * txn-compare-and-set clients; the history must be linearizable per key, revisions must respect real time, and
 * every acknowledged write must be in the healed cluster's history (see run.ts).
 *
 * Environment: NEMESIS_SECONDS (faulty phase, default 20), NEMESIS_SEED (default random, printed),
 * NEMESIS_SUT=etcd (the reference etcd 3.4 instead: a check of the harness and checker), NEMESIS_CLIENTS,
 * NEMESIS_KEYS, NEMESIS_OP_TIMEOUT_MS, NEMESIS_FAULTS (comma list of kill,pause,isolate,mute,deafen,one-way).
 * A failure prints the seed and keeps the history and member logs in the temp dir it names.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { hasEtcd, NO_ETCD, killAllChildren } from '../helpers';
import { optionsFromEnv, runNemesis } from './run';

after(killAllChildren);

const options = optionsFromEnv({ seconds: 20 });

test(`nemesis: ${options.sut}, 3 members, kill / pause / partitions, seed ${options.seed}`, {
  timeout: (options.seconds + 240) * 1000,
  skip: options.sut === 'etcd' && !hasEtcd() ? NO_ETCD : false,
}, async () => {
  const r = await runNemesis(options);
  console.log(r.summary);
  if (!r.passed) {
    assert.fail(`${r.summary}\n\nreplay with NEMESIS_SEED=${options.seed} NEMESIS_SECONDS=${options.seconds} NEMESIS_SUT=${options.sut}; ` +
      `history and member logs kept in ${r.dir}\n\n${r.problems.join('\n\n')}`);
  }
  // Not vacuous: faults happened, and writes and reads were acknowledged on every key.
  const faults = Object.values(r.faults).reduce((a, b) => a + b, 0);
  assert.ok(faults >= Math.min(3, Math.floor(options.seconds / 8)), `only ${faults} faults injected`);
  assert.ok(r.writes.acknowledged >= options.keys, `only ${r.writes.acknowledged} acknowledged writes`);
  for (const k of r.keyResults) assert.ok(k.ops >= 10, `key ${k.key}: only ${k.ops} operations checked`);
});
