/**
 * Static checks of the deployment artefacts: the Kubernetes manifests, the systemd unit, the Prometheus config
 * and alert rules, the Grafana dashboard, and the PromQL name extractor the live scrape test relies on.
 * (Metric names are checked against a live scrape in local-cluster.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { dashboardExprs, localClusterPorts, promqlMetricNames, repoPath } from './ops-helpers';

type Obj = Record<string, any>;

function k8sDocs(): Obj[] {
  const text = fs.readFileSync(repoPath('deploy', 'kubernetes', 'etcetera.yaml'), 'utf8');
  const docs = parseAllDocuments(text);
  for (const d of docs) assert.deepEqual(d.errors, [], `YAML errors: ${d.errors.map(String).join('; ')}`);
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null && d !== undefined);
}

/** Default base port of deploy/local-cluster, read from the script itself. */
function localClusterDefaultBase(): number {
  const script = fs.readFileSync(repoPath('deploy', 'local-cluster'), 'utf8');
  const m = /else base=([0-9]+)/.exec(script);
  assert.ok(m, 'deploy/local-cluster names a default base port');
  return Number(m[1]);
}

describe('promqlMetricNames', () => {
  it('finds metric names and skips functions, labels, grouping and durations', () => {
    assert.deepEqual(
      promqlMetricNames('histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{job="$job"}[5m]))) > 0.5').sort(),
      ['etcd_disk_wal_fsync_duration_seconds_bucket'],
    );
    assert.deepEqual(
      promqlMetricNames('(etcd_mvcc_db_total_size_in_bytes{job="x"} / etcd_server_quota_backend_bytes{job="x"}) * 100 > 95').sort(),
      ['etcd_mvcc_db_total_size_in_bytes', 'etcd_server_quota_backend_bytes'],
    );
    assert.deepEqual(promqlMetricNames('sum without (grpc_code) (up) or on (instance) vector(1)'), ['up']);
  });
});

describe('Kubernetes manifests (deploy/kubernetes/etcetera.yaml)', () => {
  const docs = k8sDocs();
  const byKind = (kind: string): Obj[] => docs.filter((d) => d.kind === kind);

  it('every document has apiVersion, kind and metadata.name', () => {
    assert.ok(docs.length >= 3);
    for (const d of docs) {
      assert.equal(typeof d.apiVersion, 'string', JSON.stringify(d).slice(0, 80));
      assert.equal(typeof d.kind, 'string');
      assert.match(String(d.metadata?.name), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'metadata.name is a DNS-1123 label');
    }
    const names = docs.map((d) => `${d.kind}/${d.metadata.name}`);
    assert.equal(new Set(names).size, names.length, 'no duplicate kind/name');
  });

  it('StatefulSet: serviceName of a headless Service, selector matching template labels, PVCs, probes', () => {
    const [sts, ...more] = byKind('StatefulSet');
    assert.ok(sts, 'a StatefulSet');
    assert.equal(more.length, 0);
    assert.equal(sts.apiVersion, 'apps/v1');
    const spec = sts.spec;
    assert.ok(spec.replicas === undefined || spec.replicas >= 3, 'at least 3 replicas');
    const svc = byKind('Service').find((s) => s.metadata.name === spec.serviceName);
    assert.ok(svc, `serviceName ${spec.serviceName} names a Service in the manifest`);
    assert.equal(svc.spec.clusterIP, 'None', 'the governing Service is headless');
    assert.equal(svc.spec.publishNotReadyAddresses, true, 'peers resolve each other before they are ready');

    const labels: Obj = spec.template.metadata.labels;
    const match: Obj = spec.selector.matchLabels;
    assert.ok(match && Object.keys(match).length > 0, 'selector.matchLabels');
    for (const [k, v] of Object.entries(match)) assert.equal(labels[k], v, `template label ${k} matches the selector`);
    for (const [k, v] of Object.entries(svc.spec.selector as Obj)) assert.equal(labels[k], v, `headless Service selects the pods (${k})`);

    assert.ok(Array.isArray(spec.volumeClaimTemplates) && spec.volumeClaimTemplates.length > 0, 'volumeClaimTemplates');
    const claim = spec.volumeClaimTemplates[0];
    assert.ok(claim.metadata?.name);
    assert.ok(claim.spec?.accessModes?.length > 0 && claim.spec?.resources?.requests?.storage);

    const containers: Obj[] = spec.template.spec.containers;
    assert.ok(containers.length >= 1);
    const c = containers[0]!;
    assert.ok(c.name && c.image);
    const mount = (c.volumeMounts as Obj[]).find((m) => m.name === claim.metadata.name);
    assert.ok(mount, 'the claim is mounted');
    const env = new Map<string, string>((c.env as Obj[]).map((e) => [e.name, e.value]));
    assert.ok(String(env.get('ETCD_DATA_DIR')).startsWith(mount.mountPath), 'data dir is on the persistent volume');

    const ports = new Map<number | string, number>();
    for (const p of c.ports as Obj[]) { ports.set(p.containerPort, p.containerPort); if (p.name) ports.set(p.name, p.containerPort); }
    for (const want of [2379, 2380, 2381]) assert.ok(ports.has(want), `containerPort ${want}`);
    const metricsPort = Number(/:(\d+)$/.exec(String(env.get('ETCD_LISTEN_METRICS_URLS')))?.[1]);
    assert.ok(ports.has(metricsPort), 'ETCD_LISTEN_METRICS_URLS port is a containerPort');

    const probePath = (probe: Obj | undefined): string => probe?.httpGet?.path;
    assert.equal(probePath(c.livenessProbe), '/livez');
    assert.equal(probePath(c.readinessProbe), '/readyz');
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter(Boolean)) {
      const port = ports.get(probe.httpGet.port);
      assert.equal(port, metricsPort, `probe ${probe.httpGet.path} targets the metrics listener (${probe.httpGet.port})`);
    }
    assert.equal(String(spec.template.metadata.annotations?.['prometheus.io/port']), String(metricsPort));

    // Every member named in ETCD_INITIAL_CLUSTER is a pod of this StatefulSet behind the headless Service.
    const members = String(env.get('ETCD_INITIAL_CLUSTER')).split(',');
    assert.equal(members.length, spec.replicas ?? 1);
    members.forEach((m, i) => {
      assert.equal(m, `${sts.metadata.name}-${i}=https://${sts.metadata.name}-${i}.${svc.metadata.name}:2380`);
    });
  });

  it('StatefulSet: TLS on client and peer URLs with client-cert auth, files from a mounted Secret; non-root', () => {
    const sts = byKind('StatefulSet')[0]!;
    const pod = sts.spec.template.spec;
    const c = pod.containers[0];
    const env = new Map<string, string>((c.env as Obj[]).map((e) => [e.name, e.value]));
    for (const v of ['ETCD_LISTEN_CLIENT_URLS', 'ETCD_ADVERTISE_CLIENT_URLS', 'ETCD_LISTEN_PEER_URLS', 'ETCD_INITIAL_ADVERTISE_PEER_URLS']) {
      assert.match(String(env.get(v)), /^https:\/\//, v);
    }
    assert.equal(env.get('ETCD_CLIENT_CERT_AUTH'), 'true');
    assert.equal(env.get('ETCD_PEER_CLIENT_CERT_AUTH'), 'true');
    const secretMounts = (c.volumeMounts as Obj[]).filter((m) => (pod.volumes as Obj[] | undefined)?.some((v) => v.name === m.name && v.secret?.secretName));
    assert.ok(secretMounts.length > 0, 'a Secret volume is mounted');
    for (const v of ['ETCD_CERT_FILE', 'ETCD_KEY_FILE', 'ETCD_TRUSTED_CA_FILE', 'ETCD_PEER_CERT_FILE', 'ETCD_PEER_KEY_FILE', 'ETCD_PEER_TRUSTED_CA_FILE']) {
      const file = String(env.get(v));
      assert.ok(secretMounts.some((m) => file.startsWith(`${m.mountPath}/`) && m.readOnly === true), `${v}=${file} lies in a read-only Secret mount`);
    }
    // Probes and scraping stay certificate-free: the metrics listener is plain HTTP.
    assert.match(String(env.get('ETCD_LISTEN_METRICS_URLS')), /^http:\/\//);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.ok(Number(pod.securityContext?.runAsUser) > 0 && pod.securityContext?.fsGroup !== undefined, 'runs as a non-root uid; fsGroup makes the volume writable');
    // The image is the one the Dockerfile builds (deploy/README.md: docker build -t <image> .), as that user.
    const build = /docker build -t (\S+) \./.exec(fs.readFileSync(repoPath('deploy', 'README.md'), 'utf8'));
    assert.equal(c.image, build?.[1], 'deploy/README.md builds the image the StatefulSet names');
    const user = /^USER (\d+)/m.exec(fs.readFileSync(repoPath('Dockerfile'), 'utf8'));
    assert.equal(String(pod.securityContext.runAsUser), user?.[1], 'runAsUser is the image\'s USER');
  });

  it('PodDisruptionBudget keeps quorum (minAvailable 2 or maxUnavailable 1) and selects the pods', () => {
    const [pdb] = byKind('PodDisruptionBudget');
    assert.ok(pdb, 'a PodDisruptionBudget');
    assert.equal(pdb.apiVersion, 'policy/v1');
    assert.ok(pdb.spec.minAvailable === 2 || pdb.spec.maxUnavailable === 1, JSON.stringify(pdb.spec));
    const sts = byKind('StatefulSet')[0]!;
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels as Obj)) {
      assert.equal(sts.spec.template.metadata.labels[k], v);
    }
  });

  it('client Service exposes the client and metrics ports and selects the pods', () => {
    const svc = byKind('Service').find((s) => s.spec.clusterIP !== 'None');
    assert.ok(svc, 'a non-headless client Service');
    const ports = (svc.spec.ports as Obj[]).map((p) => p.port);
    assert.ok(ports.includes(2379) && ports.includes(2381), JSON.stringify(ports));
    const sts = byKind('StatefulSet')[0]!;
    for (const [k, v] of Object.entries(svc.spec.selector as Obj)) assert.equal(sts.spec.template.metadata.labels[k], v);
  });
});

describe('Dockerfile', () => {
  const text = fs.readFileSync(repoPath('Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const froms = lines.filter((l) => l.startsWith('FROM '));

  it('multi-stage on Node 20 / Debian bookworm; npm ci and the build run in the first stage', () => {
    assert.ok(froms.length >= 2, 'multi-stage');
    for (const f of froms) assert.match(f, /^FROM node:20-bookworm(-slim)?( AS \w+)?$/, f);
    const firstStage = text.slice(text.indexOf(froms[0]!), text.indexOf(froms[1]!));
    assert.match(firstStage, /RUN npm ci\b/);
    assert.match(firstStage, /npm run build/);
    const runStage = text.slice(text.lastIndexOf(froms.at(-1)!));
    assert.match(runStage, /COPY --from=\w+ \S*dist\/src /, 'the run stage takes the compiled code from the build stage');
    for (const src of ['src', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json']) assert.ok(fs.existsSync(repoPath(src)), src);
  });

  it('runs the CLI as a non-root user with the data dir on a volume', () => {
    const users = lines.filter((l) => l.startsWith('USER '));
    assert.ok(users.length > 0);
    assert.doesNotMatch(users.at(-1)!, /^USER (root|0)(:|$)/);
    const volume = /^VOLUME \["([^"]+)"\]/m.exec(text)?.[1];
    const dataDir = /ETCD_DATA_DIR=(\S+)/.exec(text)?.[1];
    assert.ok(volume && dataDir?.startsWith(`${volume}/`), `data dir ${dataDir} on volume ${volume}`);
    assert.match(lines.find((l) => l.startsWith('ENTRYPOINT'))!, /"dist\/src\/cli\/etcetera\.js"\]$/);
    const ignored = fs.readFileSync(repoPath('.dockerignore'), 'utf8').split('\n');
    for (const p of ['node_modules', 'dist', '*.key']) assert.ok(ignored.includes(p), `.dockerignore has ${p}`);
  });
});

describe('systemd unit (deploy/systemd/etcetera@.service)', () => {
  const text = fs.readFileSync(repoPath('deploy', 'systemd', 'etcetera@.service'), 'utf8');
  const sections = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([A-Za-z]+)\]$/.exec(line);
    if (sec) { cur = new Map(); sections.set(sec[1]!, cur); continue; }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv && cur, `malformed unit line: ${raw}`);
    cur.set(kv[1]!, [...(cur.get(kv[1]!) ?? []), kv[2]!]);
  }

  it('has [Unit], [Service], [Install]', () => {
    for (const s of ['Unit', 'Service', 'Install']) assert.ok(sections.has(s), `[${s}]`);
    assert.ok(sections.get('Install')!.get('WantedBy')?.length);
  });

  it('ExecStart runs the built CLI with node; LimitNOFILE is raised', () => {
    const svc = sections.get('Service')!;
    const exec = svc.get('ExecStart');
    assert.equal(exec?.length, 1);
    const argv = exec![0]!.split(/\s+/);
    assert.ok(argv[0]!.startsWith('/') && /node$/.test(argv[0]!), 'absolute path to node');
    const script = argv.find((a) => a.endsWith('dist/src/cli/etcetera.js'));
    assert.ok(script, 'runs dist/src/cli/etcetera.js');
    assert.ok(fs.existsSync(repoPath('src', 'cli', 'etcetera.ts')));
    const nofile = Number(svc.get('LimitNOFILE')?.[0]);
    assert.ok(nofile >= 65536, `LimitNOFILE ${nofile}`);
    assert.ok(svc.get('EnvironmentFile')?.[0]?.includes('%i'), 'per-instance environment file');
  });
});

describe('Prometheus config and alert rules (grafana/)', () => {
  it('prometheus.yml parses, loads alerts.yml and scrapes the local cluster metrics ports', () => {
    const cfg = parse(fs.readFileSync(repoPath('grafana', 'prometheus.yml'), 'utf8')) as Obj;
    assert.ok((cfg.rule_files as string[]).includes('alerts.yml'));
    assert.ok(fs.existsSync(repoPath('grafana', 'alerts.yml')));
    const job = (cfg.scrape_configs as Obj[]).find((j) => j.job_name === 'etcetera');
    assert.ok(job, 'job "etcetera" (the alerts and dashboard select job="etcetera")');
    const targets: string[] = job.static_configs.flatMap((s: Obj) => s.targets);
    const base = localClusterDefaultBase();
    const ports = localClusterPorts(base);
    const metricsPorts = [ports[2], ports[5], ports[8]].map(String);
    assert.deepEqual(targets.map((t) => t.split(':').pop()).sort(), metricsPorts.sort());
    for (const t of targets) assert.match(t, /^127\.0\.0\.1:\d+$/);
  });

  it('alerts.yml parses; every rule has alert, expr, severity and selects job="etcetera"', () => {
    const rules = parse(fs.readFileSync(repoPath('grafana', 'alerts.yml'), 'utf8')) as Obj;
    const all: Obj[] = (rules.groups as Obj[]).flatMap((g) => { assert.ok(g.name); return g.rules; });
    assert.ok(all.length > 0);
    for (const r of all) {
      assert.equal(typeof r.alert, 'string');
      assert.equal(typeof r.expr, 'string');
      assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity), `${r.alert} severity`);
      assert.ok(promqlMetricNames(r.expr).length > 0, `${r.alert} reads a metric`);
      assert.match(r.expr, /job="etcetera"/, `${r.alert} selects job="etcetera"`);
    }
  });

  it('dashboard.json parses; every panel target has an expression', () => {
    const d = JSON.parse(fs.readFileSync(repoPath('grafana', 'dashboard.json'), 'utf8')) as Obj;
    assert.ok(d.uid && d.title);
    const exprs = dashboardExprs(d);
    assert.ok(exprs.length > 0);
    for (const e of exprs) assert.ok(promqlMetricNames(e.expr).length > 0, `${e.panel}: ${e.expr}`);
    const ids = (d.panels as Obj[]).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
  });
});
