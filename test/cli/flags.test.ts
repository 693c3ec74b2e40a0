import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { FlagError, parseGoDurationMs, parseServerConfig, parseInitialCluster, flagToEnv } from '../../src/cli/flags';

function tmpFile(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-flags-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

function flagError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseServerConfig(argv, env);
  } catch (e) {
    assert.ok(e instanceof FlagError, `expected FlagError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'message must be one line');
    return e.message;
  }
  assert.fail(`expected FlagError for ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

test('defaults are etcd 3.4 defaults', () => {
  const c = parseServerConfig([], {});
  assert.equal(c.mode, 'serve');
  assert.equal(c.configFile, null);
  assert.equal(c.name, 'default');
  assert.equal(c.dataDir, 'default.etcetera');
  assert.deepEqual(c.listenClientUrls, ['http://localhost:2379']);
  assert.deepEqual(c.advertiseClientUrls, ['http://localhost:2379']);
  assert.deepEqual(c.listenPeerUrls, ['http://localhost:2380']);
  assert.deepEqual(c.initialAdvertisePeerUrls, ['http://localhost:2380']);
  assert.deepEqual(c.listenMetricsUrls, []);
  assert.deepEqual(c.initialCluster, [{ name: 'default', peerUrls: ['http://localhost:2380'] }]);
  assert.equal(c.initialClusterState, 'new');
  assert.equal(c.initialClusterToken, 'etcd-cluster');
  assert.equal(c.heartbeatIntervalMs, 100);
  assert.equal(c.electionTimeoutMs, 1000);
  assert.equal(c.snapshotCount, 100000);
  assert.equal(c.quotaBackendBytes, 2 * 1024 * 1024 * 1024);
  assert.equal(c.maxTxnOps, 128);
  assert.equal(c.maxRequestBytes, 1572864);
  assert.equal(c.maxWals, 5);
  assert.equal(c.maxSnapshots, 5);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.logger, 'zap');
  assert.equal(c.watchProgressNotifyIntervalMs, 10 * 60 * 1000);
  assert.equal(c.autoCompactionMode, 'periodic');
  assert.equal(c.autoCompactionRetentionMs, 0);
  assert.equal(c.enablePprof, false);
  assert.deepEqual(c.warnings, []);
});

test('flags: both dash styles, name-derived data dir and initial cluster, units', () => {
  const c = parseServerConfig(
    ['-name', 'n1', '--heartbeat-interval=50', '--election-timeout', '500', '--quota-backend-bytes', '1024',
      '--experimental-watch-progress-notify-interval', '1h30m', '--auto-compaction-retention', '5',
      '--initial-advertise-peer-urls', 'http://10.0.0.1:2380', '--listen-metrics-urls', 'http://127.0.0.1:9000'],
    {},
  );
  assert.equal(c.name, 'n1');
  assert.equal(c.dataDir, 'n1.etcetera');
  assert.deepEqual(c.initialCluster, [{ name: 'n1', peerUrls: ['http://10.0.0.1:2380'] }]);
  assert.equal(c.heartbeatIntervalMs, 50);
  assert.equal(c.electionTimeoutMs, 500);
  assert.equal(c.quotaBackendBytes, 1024);
  assert.equal(c.watchProgressNotifyIntervalMs, 90 * 60 * 1000);
  assert.equal(c.autoCompactionRetentionMs, 5 * 3600 * 1000);
  assert.deepEqual(c.listenMetricsUrls, ['http://127.0.0.1:9000']);
});

test('URL lists are split, de-duplicated and sorted; initial cluster groups by name', () => {
  const c = parseServerConfig(
    ['--name', 'b', '--listen-client-urls', 'http://127.0.0.1:2379, http://[::1]:2379',
      '--advertise-client-urls', 'http://b:1,http://a:1,http://a:1',
      '--initial-cluster', 'a=http://a:2380,b=http://b:2380,b=http://b2:2380', '--initial-cluster-state', 'existing'],
    {},
  );
  assert.deepEqual(c.listenClientUrls, ['http://127.0.0.1:2379', 'http://[::1]:2379']);
  assert.deepEqual(c.advertiseClientUrls, ['http://a:1', 'http://b:1']);
  assert.deepEqual(c.initialCluster, [
    { name: 'a', peerUrls: ['http://a:2380'] },
    { name: 'b', peerUrls: ['http://b2:2380', 'http://b:2380'] },
  ]);
  assert.equal(c.initialClusterState, 'existing');
  assert.deepEqual(parseInitialCluster('x=http://h:1'), [{ name: 'x', peerUrls: ['http://h:1'] }]);
});

test('ETCD_* environment variables', () => {
  assert.equal(flagToEnv('data-dir'), 'ETCD_DATA_DIR');
  const c = parseServerConfig([], {
    ETCD_NAME: 'envname', ETCD_DATA_DIR: '/var/lib/x', ETCD_HEARTBEAT_INTERVAL: '200', ETCD_ELECTION_TIMEOUT: '2000',
    ETCD_INITIAL_CLUSTER_STATE: 'existing', ETCD_ENABLE_PPROF: 'true', ETCD_BOGUS: '1', ETCD_LOG_LEVEL: '',
  });
  assert.equal(c.name, 'envname');
  assert.equal(c.dataDir, '/var/lib/x');
  assert.equal(c.heartbeatIntervalMs, 200);
  assert.equal(c.electionTimeoutMs, 2000);
  assert.equal(c.initialClusterState, 'existing');
  assert.equal(c.enablePprof, true);
  assert.equal(c.logLevel, 'info', 'empty env values are ignored, as etcd');
  assert.ok(c.warnings.some((w) => w.includes('enable-pprof')));
  assert.ok(c.warnings.some((w) => w.includes('unrecognized environment variable ETCD_BOGUS')));
  assert.match(flagError([], { ETCD_HEARTBEAT_INTERVAL: 'abc' }), /^invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error$/);
});

test('flags win over env (with a warning)', () => {
  const c = parseServerConfig(['--name', 'flag', '--snapshot-count', '7'], { ETCD_NAME: 'env', ETCD_SNAPSHOT_COUNT: '9', ETCD_MAX_WALS: '3' });
  assert.equal(c.name, 'flag');
  assert.equal(c.snapshotCount, 7);
  assert.equal(c.maxWals, 3);
  assert.ok(c.warnings.some((w) => w.includes('ETCD_NAME is shadowed')));
});

test('--config-file: YAML with etcd keys; other flags and env are ignored', () => {
  const file = tmpFile('etcd.conf.yml', [
    'name: infra1',
    'data-dir: /data/infra1',
    'listen-client-urls: http://127.0.0.1:12379',
    'advertise-client-urls: http://127.0.0.1:12379',
    'listen-peer-urls: http://127.0.0.1:12380',
    'initial-advertise-peer-urls: http://127.0.0.1:12380',
    'initial-cluster: infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380',
    'initial-cluster-state: new',
    'initial-cluster-token: tok',
    'heartbeat-interval: 50',
    'election-timeout: 500',
    'quota-backend-bytes: 4096',
    'max-txn-ops: 64',
    'experimental-watch-progress-notify-interval: 5000000000',
    'enable-pprof: false',
    'wal-dir: ""',
    '',
  ].join('\n'));
  const c = parseServerConfig(['--config-file', file, '--name', 'ignored', '--heartbeat-interval', '1'], { ETCD_DATA_DIR: '/ignored' });
  assert.equal(c.configFile, file);
  assert.equal(c.name, 'infra1');
  assert.equal(c.dataDir, '/data/infra1');
  assert.deepEqual(c.listenClientUrls, ['http://127.0.0.1:12379']);
  assert.deepEqual(c.initialCluster.map((m) => m.name), ['infra1', 'infra2']);
  assert.equal(c.initialClusterToken, 'tok');
  assert.equal(c.heartbeatIntervalMs, 50);
  assert.equal(c.electionTimeoutMs, 500);
  assert.equal(c.quotaBackendBytes, 4096);
  assert.equal(c.maxTxnOps, 64);
  assert.equal(c.watchProgressNotifyIntervalMs, 5000, 'YAML durations are Go nanoseconds');
  assert.equal(c.maxWals, 5, 'unset keys keep defaults');
  assert.ok(c.warnings.some((w) => w.includes('"wal-dir"')));

  const viaEnv = parseServerConfig([], { ETCD_CONFIG_FILE: file, ETCD_NAME: 'ignored' });
  assert.equal(viaEnv.name, 'infra1');

  assert.match(flagError(['--config-file', tmpFile('bad.yml', 'heartbeat-interval: 300\n')]), /should be at least as 5 times/);
  assert.match(flagError(['--config-file', tmpFile('bad2.yml', 'name: [unclosed\n')]), /yaml/);
  assert.match(flagError(['--config-file', '/nonexistent/etcd.yml']), /no such file or directory/);
  // flag syntax is still checked first, as etcd's flag parsing runs before the file is read
  assert.match(flagError(['--config-file', file, '--bogus']), /flag provided but not defined: -bogus/);
});

test('unknown flags and positional arguments → FlagError', () => {
  assert.equal(flagError(['--bogus']), 'flag provided but not defined: -bogus');
  assert.equal(flagError(['--bogus=1', '--other']), 'flag provided but not defined: -bogus');
  assert.equal(flagError(['--no-enable-pprof']), 'flag provided but not defined: -no-enable-pprof');
  assert.equal(flagError(['extra']), "'extra' is not a valid flag");
  assert.equal(flagError(['--name']), 'flag needs an argument: -name');
});

test('malformed values → FlagError with etcd wording', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--heartbeat-interval', 'abc'], /^invalid value "abc" for flag -heartbeat-interval: parse error$/],
    [['--election-timeout', '1.5'], /^invalid value "1.5" for flag -election-timeout: parse error$/],
    [['--snapshot-count', '-1'], /^invalid value "-1" for flag -snapshot-count: parse error$/],
    [['--max-request-bytes', '99999999999999999999'], /value out of range/],
    [['--initial-cluster-state', 'foo'], /^invalid value "foo" for flag -initial-cluster-state: invalid value$/],
    [['--listen-client-urls', 'foo', '--advertise-client-urls', 'http://a:1'], /URL scheme must be http, https, unix, or unixs: foo$/],
    [['--advertise-client-urls', 'http://a'], /URL address does not have the form "host:port": http:\/\/a$/],
    [['--advertise-client-urls', 'http://a:1/x'], /URL must not contain a path/],
    [['--experimental-watch-progress-notify-interval', '10x'], /parse error$/],
    [['--experimental-watch-progress-notify-interval', '10'], /parse error$/],
    [['--log-level', 'chatty'], /unknown level "chatty"/],
    [['--logger', 'log4j'], /-logger: invalid value$/],
    [['--heartbeat-interval', '300'], /^error verifying flags, --election-timeout\[1000ms\] should be at least as 5 times as --heartbeat-interval\[300ms\]\. See 'etcetera --help'\.$/],
    [['--heartbeat-interval', '0'], /--heartbeat-interval must be >0/],
    [['--election-timeout', '60000'], /is too long/],
    [['--listen-client-urls', 'http://127.0.0.1:1'], /--advertise-client-urls is required when --listen-client-urls is set explicitly/],
    [['--listen-client-urls', 'http://example.com:1', '--advertise-client-urls', 'http://a:1'], /expected IP in URL for binding/],
    [['--auto-compaction-mode', 'bad'], /unknown auto-compaction-mode "bad"/],
    [['--auto-compaction-retention', 'soon'], /error parsing CompactionRetention/],
    [['--initial-cluster', 'other=http://h:2380'], /couldn't find local name "default" in the initial cluster configuration/],
    [['--initial-cluster', 'default'], /error setting up initial cluster/],
  ];
  for (const [argv, re] of cases) assert.match(flagError(argv), re, JSON.stringify(argv));
});

test('Go durations', () => {
  assert.equal(parseGoDurationMs('10m'), 600000);
  assert.equal(parseGoDurationMs('5s'), 5000);
  assert.equal(parseGoDurationMs('100ms'), 100);
  assert.equal(parseGoDurationMs('1.5h'), 5400000);
  assert.equal(parseGoDurationMs('1m30s'), 90000);
  assert.equal(parseGoDurationMs('0'), 0);
  assert.throws(() => parseGoDurationMs('5'), FlagError);
  assert.throws(() => parseGoDurationMs('ms'), FlagError);
});

test('--version / --help modes', () => {
  assert.equal(parseServerConfig(['--version'], {}).mode, 'version');
  assert.equal(parseServerConfig(['--help'], {}).mode, 'help');
  assert.equal(parseServerConfig(['-h'], {}).mode, 'help');
});

test('child process: runCliOrExit exits 2 with one stderr line; 0 on success and --version', () => {
  const flagsJs = path.join(__dirname, '..', '..', 'src', 'cli', 'flags.js');
  const script = tmpFile('cli.js', `const c = require(${JSON.stringify(flagsJs)}).runCliOrExit(process.argv.slice(2));\nprocess.stdout.write(JSON.stringify({ name: c.name, dataDir: c.dataDir }));\n`);
  const env = { PATH: process.env.PATH ?? '' };
  const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env, timeout: 20000 });

  for (const args of [['--bogus'], ['--heartbeat-interval', 'abc'], ['--heartbeat-interval', '300']]) {
    const r = run(...args);
    assert.equal(r.status, 2, `exit status for ${args.join(' ')}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.split('\n');
    assert.equal(lines.length, 2, `exactly one stderr line: ${JSON.stringify(r.stderr)}`);
    assert.equal(lines[1], '');
  }
  assert.equal(run('--bogus').stderr, 'flag provided but not defined: -bogus\n');

  const ok = run('--name', 'x');
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { name: 'x', dataDir: 'x.etcetera' });

  const v = run('--version');
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^etcd Version: 3\.4\.23\n/);

  const h = run('--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /--listen-client-urls/);
});

test('--enable-v2: etcd 3.4 flag, env and config key; false by default', () => {
  for (const [argv, env, want] of [
    [[], {}, false],
    [['--enable-v2=false'], {}, false],
    [['--enable-v2', 'false'], {}, false],
    [[], { ETCD_ENABLE_V2: 'false' }, false],
    [['--config-file', tmpFile('v2.yml', 'enable-v2: false\n')], {}, false],
    [['--enable-v2=true'], {}, true],
    [['--enable-v2'], {}, true],
    [[], { ETCD_ENABLE_V2: 'true' }, true],
    [['--config-file', tmpFile('v2t.yml', 'enable-v2: true\n')], {}, true],
  ] as Array<[string[], NodeJS.ProcessEnv, boolean]>) {
    const c = parseServerConfig(argv, env);
    assert.equal(c.mode, 'serve', JSON.stringify({ argv, env }));
    assert.equal((c as { enableV2: boolean }).enableV2, want, JSON.stringify({ argv, env }));
  }
});

test('gRPC transport flags: --max-concurrent-streams and --grpc-keepalive-* (defaults, flags, env, config file)', () => {
  const d = parseServerConfig([], {});
  assert.deepEqual([d.maxConcurrentStreams, d.grpcKeepaliveMinTimeMs, d.grpcKeepaliveIntervalMs, d.grpcKeepaliveTimeoutMs], [0xffffffff, 5000, 2 * 3600 * 1000, 20_000]);
  const f = parseServerConfig(['--max-concurrent-streams', '100', '--grpc-keepalive-min-time', '1s', '--grpc-keepalive-interval', '30s', '--grpc-keepalive-timeout', '0'], {});
  assert.deepEqual([f.maxConcurrentStreams, f.grpcKeepaliveMinTimeMs, f.grpcKeepaliveIntervalMs, f.grpcKeepaliveTimeoutMs], [100, 1000, 30_000, 0]);
  const e = parseServerConfig([], { ETCD_GRPC_KEEPALIVE_MIN_TIME: '250ms', ETCD_MAX_CONCURRENT_STREAMS: '9' });
  assert.deepEqual([e.grpcKeepaliveMinTimeMs, e.maxConcurrentStreams], [250, 9]);
  const file = tmpFile('ka.yml', 'grpc-keepalive-interval: 7000000000\nmax-concurrent-streams: 3\n');
  const c = parseServerConfig(['--config-file', file], {});
  assert.deepEqual([c.grpcKeepaliveIntervalMs, c.maxConcurrentStreams], [7000, 3]);
  assert.match(flagError(['--max-concurrent-streams', '4294967296']), /out of range/);
  assert.match(flagError(['--grpc-keepalive-min-time', '5']), /./);
});
