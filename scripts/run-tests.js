// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Usage: node scripts/run-tests.js [substring filter...]
//
// Most test files spend their time waiting (elections, TTLs, process starts), so they run two files at a time
// (ETCETERA_TEST_CONCURRENCY, default 2). The few files that load both cores on purpose (overload, nemesis, the
// bench runs) run afterwards, one at a time, so they neither slow the others past their timeouts nor measure a
// machine the other lane is also loading.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const root = path.join(__dirname, '..', 'dist', 'test');
const filters = process.argv.slice(2);
/** Files run alone: they saturate the machine by design. Matched against the path below dist/test. */
const EXCLUSIVE = [/^server\/overload\.test\.js$/, /^nemesis\/nemesis\.test\.js$/, /^bench\/(e2e|v2)\.test\.js$/, /^crash\//];
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
/** How many of the slowest files the summary lists. */
const SLOWEST_FILES_SHOWN = 15;
const timesFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-test-times-')), 'times.jsonl');
let status = 0;
const laneWallMs = [];
for (const lane of lanes) {
  if (lane.files.length === 0) continue;
  const args = [
    '--test', `--test-concurrency=${lane.concurrency}`,
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    `--test-reporter=${path.join(__dirname, 'file-times-reporter.js')}`, `--test-reporter-destination=${timesFile}`,
    ...lane.files,
  ];
  const startedMs = Date.now();
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  laneWallMs.push(`${lane.files.length} files × ${lane.concurrency} at a time: ${((Date.now() - startedMs) / 1000).toFixed(0)} s`);
  if (r.status !== 0) status = r.status ?? 1;
  // The reporter truncates its destination per run, so each lane's lines are kept before the next lane starts.
  if (fs.existsSync(timesFile)) fs.appendFileSync(`${timesFile}.all`, fs.readFileSync(timesFile));
}
const perFileMs = new Map();
if (fs.existsSync(`${timesFile}.all`)) {
  for (const line of fs.readFileSync(`${timesFile}.all`, 'utf8').split('\n')) {
    if (line === '') continue;
    const { file, ms } = JSON.parse(line);
    const rel = path.relative(root, file).split(path.sep).join('/');
    perFileMs.set(rel, (perFileMs.get(rel) ?? 0) + ms);
  }
}
fs.rmSync(path.dirname(timesFile), { recursive: true, force: true });
console.log(`\nwall time per lane: ${laneWallMs.join('; ')}`);
console.log(`slowest files (sum of their top-level tests):`);
for (const [file, ms] of [...perFileMs].sort((a, b) => b[1] - a[1]).slice(0, SLOWEST_FILES_SHOWN)) {
  console.log(`  ${(ms / 1000).toFixed(1).padStart(6)} s  ${file}`);
}
process.exit(status);
