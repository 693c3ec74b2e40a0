/**
 * Deterministic simulation of 3- and 5-member clusters (see sim.ts). Scale with SIM_SEEDS (seeds per cluster
 * size), SIM_STEPS (steps per seed); replay one seed with SIM_SEED (and SIM_NODES).
 * Default: 16 seeds x 3000 steps for each of 3 and 5 nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation } from './sim';

const SEEDS = Number(process.env.SIM_SEEDS ?? 16);
const STEPS = Number(process.env.SIM_STEPS ?? 3000);
const ONLY_SEED = process.env.SIM_SEED !== undefined ? Number(process.env.SIM_SEED) : undefined;
const ONLY_NODES = process.env.SIM_NODES !== undefined ? Number(process.env.SIM_NODES) : undefined;
const BASE_SEED = Number(process.env.SIM_BASE_SEED ?? 1);

for (const size of [3, 5]) {
  if (ONLY_NODES !== undefined && ONLY_NODES !== size) continue;
  const seeds = ONLY_SEED !== undefined ? [ONLY_SEED] : Array.from({ length: SEEDS }, (_, i) => BASE_SEED + i);
  test(`simulation: ${size} nodes, ${seeds.length} seeds x ${STEPS} steps`, () => {
    const t0 = Date.now();
    let elections = 0;
    let snaps = 0;
    let crashes = 0;
    let reads = 0;
    let committed = 0;
    for (const seed of seeds) {
      let st;
      try {
        st = runSimulation({ seed, nodes: size, steps: STEPS });
      } catch (e) {
        const replay = `SIM_SEED=${seed} SIM_NODES=${size} SIM_STEPS=${STEPS} node --test dist/test/raft/simulation.test.js`;
        console.error(`simulation failed; replay with: ${replay}`);
        throw new Error(`${(e as Error).message}\n  replay: ${replay}`, { cause: e });
      }
      elections += st.elections;
      snaps += st.snapshotsInstalled;
      crashes += st.crashes;
      reads += st.readsServed;
      committed += st.committed;
    }
    const ms = Date.now() - t0;
    console.log(
      `# sim ${size} nodes: ${seeds.length} seeds x ${STEPS} steps in ${ms} ms; elections=${elections} committed=${committed} snapshotsInstalled=${snaps} crashes=${crashes} readsServed=${reads}`,
    );
    // The run must actually exercise the interesting paths (not a hollow pass).
    assert.ok(elections >= seeds.length, 'elections happened');
    assert.ok(committed > seeds.length * 10, 'entries were committed');
    if (STEPS >= 2000 && seeds.length >= 4) {
      assert.ok(snaps > 0, 'InstallSnapshot was exercised');
      assert.ok(crashes > 0, 'crashes were exercised');
      assert.ok(reads > 0, 'ReadIndex was exercised');
    }
  });
}
