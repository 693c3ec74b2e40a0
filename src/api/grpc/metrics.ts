/**
 * go-grpc-prometheus–compatible server counters (as etcd 3.4 registers them via grpc_prometheus.Register):
 * grpc_server_started_total, grpc_server_handled_total{grpc_code}, grpc_server_msg_received_total,
 * grpc_server_msg_sent_total, labelled {grpc_type, grpc_service, grpc_method}.
 *
 * Cost per call is a few plain number increments on a per-method object resolved once at server start:
 * prom-client's `inc(labels)` hashes the label object on every call, so the counts are pushed into the
 * prom-client counters (src/metrics/registry.ts) only at scrape time, from each counter's `collect` hook.
 */
import type { handleUnaryCall, sendUnaryData, ServerDuplexStream, ServerErrorResponse, ServerWritableStream } from '@grpc/grpc-js';
import type { Counter } from 'prom-client';
import { GRPC_CODES } from '../../metrics/registry';
import type { GrpcType } from './services';

/** The prom-client counters this module feeds (e.g. `metrics` from src/metrics/registry.ts). */
export interface GrpcCounterSinks {
  grpc_server_started_total: Counter<string>;
  grpc_server_handled_total: Counter<string>;
  grpc_server_msg_received_total: Counter<string>;
  grpc_server_msg_sent_total: Counter<string>;
  /** etcd v3rpc/codec.go: bytes of every message marshalled to / unmarshalled from clients. */
  etcd_network_client_grpc_sent_bytes_total?: Counter<string>;
  etcd_network_client_grpc_received_bytes_total?: Counter<string>;
  /** etcd v3rpc/interceptor.go: calls by {type: unary|stream, client_api_version: metadata or "unknown"}. */
  etcd_server_client_requests_total?: Counter<string>;
}

/** Where a call's `client-api-version` comes from: one header of an h2grpc call, or grpc-js's Metadata. */
export interface MetadataSource {
  readonly metadata?: { get(key: string): unknown[] };
  headerValue?(key: string): string | undefined;
}

/**
 * Client traffic counted by the wrappers (plain numbers, pushed into prom-client at scrape time): message bytes in
 * and out, and calls per (type, client-api-version).
 */
export class ClientTraffic {
  sentBytes = 0;
  receivedBytes = 0;
  /** "unary|3.4" → calls. */
  readonly requests = new Map<string, number>();
  private pSent = 0;
  private pReceived = 0;
  private readonly pRequests = new Map<string, number>();

  /**
   * Counts one call: etcd reads `client-api-version` from the call metadata ("unknown" when absent). A call that
   * can read one request header directly (src/api/h2grpc/call.ts `headerValue`) is asked for it, so counting does
   * not build the call's whole Metadata.
   */
  request(type: 'unary' | 'stream', call: MetadataSource): void {
    let v: unknown;
    if (typeof call.headerValue === 'function') v = call.headerValue('client-api-version');
    else v = call.metadata?.get('client-api-version')[0];
    const version = typeof v === 'string' ? v : v instanceof Buffer ? v.toString() : 'unknown';
    let key: string;
    if (type === this.lastType && version === this.lastVersion) key = this.lastKey;
    else {
      key = `${type}|${version}`;
      this.lastType = type;
      this.lastVersion = version;
      this.lastKey = key;
    }
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }
  // The last (type, version) → key, so a run of calls from one client reuses the key string.
  private lastType = '';
  private lastVersion = '';
  private lastKey = '';

  /** Pushes the increases since the last push into `s`. */
  push(s: GrpcCounterSinks): void {
    if (s.etcd_network_client_grpc_sent_bytes_total && this.sentBytes > this.pSent) {
      s.etcd_network_client_grpc_sent_bytes_total.inc(this.sentBytes - this.pSent);
    }
    this.pSent = this.sentBytes;
    if (s.etcd_network_client_grpc_received_bytes_total && this.receivedBytes > this.pReceived) {
      s.etcd_network_client_grpc_received_bytes_total.inc(this.receivedBytes - this.pReceived);
    }
    this.pReceived = this.receivedBytes;
    const c = s.etcd_server_client_requests_total;
    for (const [key, n] of this.requests) {
      const d = n - (this.pRequests.get(key) ?? 0);
      if (c && d > 0) {
        const i = key.indexOf('|');
        c.inc({ type: key.slice(0, i), client_api_version: key.slice(i + 1) }, d);
      }
      this.pRequests.set(key, n);
    }
  }
}

/** Per-method counts since start. Mutated directly by the handlers' wrappers. */
export class MethodCounters {
  started = 0;
  received = 0;
  sent = 0;
  /** Completed calls by gRPC status code 0..16. */
  readonly handled = new Float64Array(GRPC_CODES.length);
  // what has already been pushed into prom-client
  private pStarted = 0;
  private pReceived = 0;
  private pSent = 0;
  private readonly pHandled = new Float64Array(GRPC_CODES.length);
  private readonly labels: { grpc_type: GrpcType; grpc_service: string; grpc_method: string };
  private readonly handledLabels: Record<string, string>[];

  /** Shared client traffic counters of the server this method belongs to. */
  traffic: ClientTraffic = new ClientTraffic();

  /** `service` is the full name ("etcdserverpb.KV"), `method` the proto name ("Range"). */
  constructor(readonly service: string, readonly method: string, readonly type: GrpcType) {
    this.labels = { grpc_type: type, grpc_service: service, grpc_method: method };
    this.handledLabels = GRPC_CODES.map((c) => ({ ...this.labels, grpc_code: c }));
  }

  /** Records one finished call with status `code` (0 OK; codes outside 0..16 count as Unknown). */
  done(code: number): void {
    this.handled[code >= 0 && code < 17 ? code : 2]++;
  }

  /** Creates this method's series at 0 (go-grpc-prometheus preRegisterMethod). */
  preinit(s: GrpcCounterSinks): void {
    s.grpc_server_started_total.inc(this.labels, 0);
    s.grpc_server_msg_received_total.inc(this.labels, 0);
    s.grpc_server_msg_sent_total.inc(this.labels, 0);
    for (const l of this.handledLabels) s.grpc_server_handled_total.inc(l, 0);
  }

  /** Pushes the increments since the last push into counter `which` of `s`. */
  push(which: SinkName, s: GrpcCounterSinks): void {
    switch (which) {
      case 'grpc_server_started_total':
        if (this.started > this.pStarted) s.grpc_server_started_total.inc(this.labels, this.started - this.pStarted);
        this.pStarted = this.started;
        break;
      case 'grpc_server_msg_received_total':
        if (this.received > this.pReceived) s.grpc_server_msg_received_total.inc(this.labels, this.received - this.pReceived);
        this.pReceived = this.received;
        break;
      case 'grpc_server_msg_sent_total':
        if (this.sent > this.pSent) s.grpc_server_msg_sent_total.inc(this.labels, this.sent - this.pSent);
        this.pSent = this.sent;
        break;
      case 'grpc_server_handled_total':
        for (let c = 0; c < this.handled.length; c++) {
          const d = this.handled[c]! - this.pHandled[c]!;
          if (d > 0) s.grpc_server_handled_total.inc(this.handledLabels[c]!, d);
          this.pHandled[c] = this.handled[c]!;
        }
        break;
    }
  }
}

const SINK_NAMES = [
  'grpc_server_started_total',
  'grpc_server_handled_total',
  'grpc_server_msg_received_total',
  'grpc_server_msg_sent_total',
] as const;
type SinkName = (typeof SINK_NAMES)[number];

const TRAFFIC_SINKS = [
  'etcd_network_client_grpc_sent_bytes_total',
  'etcd_network_client_grpc_received_bytes_total',
  'etcd_server_client_requests_total',
] as const;

// Per prom-client counter object: the live servers' traffic pushers feeding it.
const trafficFeeders = new WeakMap<Counter<string>, Set<() => void>>();

// Per prom-client counter object: the live method counters feeding it (one collect hook per counter).
const feeders = new WeakMap<Counter<string>, Set<{ m: MethodCounters; s: GrpcCounterSinks }>>();

function attach(which: SinkName, s: GrpcCounterSinks, m: MethodCounters): { m: MethodCounters; s: GrpcCounterSinks } {
  const counter = s[which];
  let set = feeders.get(counter);
  if (set === undefined) {
    const live = new Set<{ m: MethodCounters; s: GrpcCounterSinks }>();
    set = live;
    feeders.set(counter, live);
    const c = counter as unknown as { collect?: () => unknown };
    const previous = c.collect;
    c.collect = function (this: unknown) {
      for (const f of live) f.m.push(which, f.s);
      return previous?.call(this);
    };
  }
  const entry = { m, s };
  set.add(entry);
  return entry;
}

/** The gRPC counters of one server: hands out per-method counters and keeps them fed into `sinks`. */
export class GrpcServerMetrics {
  private readonly entries: { which: SinkName; e: { m: MethodCounters; s: GrpcCounterSinks } }[] = [];
  /** Client bytes and calls of every method of this server. */
  readonly traffic = new ClientTraffic();
  private readonly trafficHooks: Array<{ counter: Counter<string>; fn: () => void }> = [];

  /** `sinks`: the prom-client counters to report into (normally `metrics` from src/metrics/registry.ts). */
  constructor(private readonly sinks: GrpcCounterSinks) {
    for (const name of TRAFFIC_SINKS) {
      const counter = sinks[name];
      if (!counter) continue;
      const fn = (): void => this.traffic.push(this.sinks);
      let set = trafficFeeders.get(counter);
      if (set === undefined) {
        const live = new Set<() => void>();
        set = live;
        trafficFeeders.set(counter, live);
        const c = counter as unknown as { collect?: () => unknown };
        const previous = c.collect;
        c.collect = function (this: unknown) {
          for (const f of live) f();
          return previous?.call(this);
        };
      }
      set.add(fn);
      this.trafficHooks.push({ counter, fn });
    }
  }

  /** Counters of one method, created at 0 in the registry (so the series exist before the first call). */
  method(service: string, method: string, type: GrpcType): MethodCounters {
    const m = new MethodCounters(service, method, type);
    m.traffic = this.traffic;
    m.preinit(this.sinks);
    for (const which of SINK_NAMES) this.entries.push({ which, e: attach(which, this.sinks, m) });
    return m;
  }

  /** Pushes pending counts and stops feeding the registry (server shutdown). Counts stay in the registry. */
  detach(): void {
    for (const { which, e } of this.entries) {
      e.m.push(which, e.s);
      feeders.get(this.sinks[which])?.delete(e);
    }
    this.entries.length = 0;
    this.traffic.push(this.sinks);
    for (const { counter, fn } of this.trafficHooks) trafficFeeders.get(counter)?.delete(fn);
    this.trafficHooks.length = 0;
  }
}

/**
 * Wraps a unary handler so it counts started / received at entry and handled{code} (+ sent on success) when
 * it answers (go-grpc-prometheus UnaryServerInterceptor). Costs one closure per call.
 */
export function instrumentUnary(handler: handleUnaryCall<Buffer, Uint8Array>, m: MethodCounters): handleUnaryCall<Buffer, Uint8Array> {
  return (call, callback) => {
    m.started++;
    m.received++;
    const t = m.traffic;
    t.receivedBytes += call.request.length;
    t.request('unary', call);
    const cb: sendUnaryData<Uint8Array> = (err: ServerErrorResponse | Partial<{ code: number }> | null, value?: Uint8Array | null) => {
      if (err) m.done(typeof err.code === 'number' ? err.code : 2);
      else {
        m.sent++;
        m.handled[0]++;
        if (value) t.sentBytes += value.length;
      }
      callback(err as ServerErrorResponse | null, value);
    };
    handler(call, cb);
  };
}

/**
 * Wraps a streaming handler (server, client or bidi stream): started at entry; received once at entry for a
 * server stream, per incoming message otherwise; sent per written message; handled{code} once at the end of
 * the call (`finish` → OK, an emitted error's code otherwise) (go-grpc-prometheus StreamServerInterceptor).
 */
export function instrumentStream<C extends ServerWritableStream<Buffer, Uint8Array> | ServerDuplexStream<Buffer, Uint8Array>>(
  handler: (call: C) => void,
  m: MethodCounters,
  type: GrpcType,
): (call: C) => void {
  return (call) => {
    m.started++;
    const t = m.traffic;
    t.request(type === 'unary' ? 'unary' : 'stream', call);
    if (type === 'server_stream') {
      m.received++;
      const req = (call as { request?: unknown }).request;
      if (req instanceof Uint8Array) t.receivedBytes += req.length;
    } else {
      call.on('data', (d: unknown) => {
        m.received++;
        if (d instanceof Uint8Array) t.receivedBytes += d.length;
      });
    }
    let done = false;
    const write = call.write.bind(call) as (...a: unknown[]) => boolean;
    (call as { write: (...a: unknown[]) => boolean }).write = (...a: unknown[]) => {
      m.sent++;
      const msg = a[0];
      if (msg instanceof Uint8Array) t.sentBytes += msg.length;
      return write(...a);
    };
    call.once('error', (e: { code?: number }) => {
      if (!done) m.done(typeof e?.code === 'number' ? e.code : 2);
      done = true;
    });
    call.once('finish', () => {
      if (!done) m.done(0);
      done = true;
    });
    handler(call);
  };
}
