/** recoverHardState: the commit index a restarting member starts from (src/server/recovered-state.ts). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { recoverHardState } from '../../src/server/recovered-state';
import { MembershipError } from '../../src/server/membership';

test('applied past the recorded commit (lazy commit-only HardState lost in a crash) raises commit to applied', () => {
  const hs = { term: 2, vote: 7, commit: 404 };
  assert.deepEqual(recoverHardState(hs, 406, 406), { term: 2, vote: 7, commit: 406 });
  assert.equal(hs.commit, 404, 'the argument is not mutated');
});

test('applied at or below the recorded commit keeps the HardState as it is', () => {
  assert.deepEqual(recoverHardState({ term: 3, vote: 1, commit: 10 }, 10, 12), { term: 3, vote: 1, commit: 10 });
  assert.deepEqual(recoverHardState({ term: 3, vote: 1, commit: 10 }, 4, 12), { term: 3, vote: 1, commit: 10 });
});

test('applied past the end of the WAL refuses to start with MembershipError naming both indexes', () => {
  assert.throws(() => recoverHardState({ term: 1, vote: 1, commit: 5 }, 9, 6), (e: unknown) => e instanceof MembershipError && /applied index 9/.test(e.message) && /WAL ends at 6/.test(e.message));
});
