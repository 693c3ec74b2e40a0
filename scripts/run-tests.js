// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Usage: node scripts/run-tests.js [substring filter...]
//
// Most test files spend their time waiting (elections, TTLs, process starts), so they run two files at a time
// (ETCETERA_TEST_CONCURRENCY, default 2). The few files that load both cores on purpose (overload, nemesis, the
// bench runs) run afterwards, one at a time, so they neither slow the others past their timeouts nor measure a
// machine the other lane is also loading.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..', 'dist', 'test');
const filters = process.argv.slice(2);
/** Files run alone: they saturate the machine by design. Matched against the path below dist/test. */
const EXCLUSIVE = [/^server\/overload\.test\.js$/, /^nemesis\/nemesis\.test\.js$/, /^bench\//, /^crash\//];
const concurrency = Number(process.env.ETCETERA_TEST_CONCURRENCY ?? 2);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`ETCETERA_TEST_CONCURRENCY must be a positive integer, got ${process.env.ETCETERA_TEST_CONCURRENCY}`);
  process.exit(2);
}
function walk(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? walk(p) : d.name.endsWith('.test.js') ? [p] : [];
  });
}
const files = walk(root).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (files.length === 0) { console.error('no test files found under dist/test'); process.exit(1); }
const isExclusive = (f) => EXCLUSIVE.some((re) => re.test(path.relative(root, f).split(path.sep).join('/')));
const lanes = [
  { files: files.filter((f) => !isExclusive(f)), concurrency },
  { files: files.filter(isExclusive), concurrency: 1 },
];
let status = 0;
for (const lane of lanes) {
  if (lane.files.length === 0) continue;
  const args = ['--test', `--test-concurrency=${lane.concurrency}`, '--test-reporter=spec', ...lane.files];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
