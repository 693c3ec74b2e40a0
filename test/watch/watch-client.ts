/**
 * Test clients for etcdserverpb.Watch: a grpc-js bidi stream with our own codecs (every response field visible),
 * and a raw HTTP/2 stream that can stop reading (to stall the server's sends by HTTP/2 flow control).
 */
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import { pb } from '../../src/wire/codec';
import { grpcTarget } from '../helpers/grpc';

const TO_OBJECT = { defaults: true, arrays: true, longs: Number, enums: Number } as const;

/** A decoded WatchResponse (protobufjs camelCase, bytes as Buffers). */
export interface WatchResp {
  header: { clusterId: number; memberId: number; revision: number; raftTerm: number };
  watchId: number; created: boolean; canceled: boolean; compactRevision: number; cancelReason: string; fragment: boolean;
  events: Array<{ type: number; kv: any; prevKv: any }>;
}

export function decodeWatchResponse(b: Uint8Array): WatchResp {
  return pb.WatchResponse.toObject(pb.WatchResponse.decode(b), TO_OBJECT) as WatchResp;
}

export function encodeWatchRequest(r: object): Buffer {
  return Buffer.from(pb.WatchRequest.encode(pb.WatchRequest.fromObject(r)).finish());
}

/** One watch stream over grpc-js. */
export class WatchClient {
  readonly responses: WatchResp[] = [];
  /** Events received so far (cheap to poll). */
  eventCount = 0;
  createdCount = 0;
  private readonly call: grpc.ClientDuplexStream<Buffer, WatchResp>;
  private waiters: Array<() => void> = [];
  ended = false;
  error: Error | null = null;

  /** `metadata`: sent when the stream opens (e.g. an auth `token`). */
  constructor(endpoint: string, client?: grpc.Client, metadata: grpc.Metadata = new grpc.Metadata()) {
    const c = client ?? new grpc.Client(grpcTarget(endpoint), grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    this.ownClient = client ? null : c;
    this.call = c.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', (b: Buffer) => b, (b: Buffer) => decodeWatchResponse(b), metadata);
    this.call.on('data', (r: WatchResp) => {
      this.responses.push(r);
      this.eventCount += r.events.length;
      if (r.created) this.createdCount++;
      if (this.waiters.length > 0) this.wake();
    });
    this.call.on('error', (e) => { this.error = e; this.ended = true; this.wake(); });
    this.call.on('end', () => { this.ended = true; this.wake(); });
  }
  private readonly ownClient: grpc.Client | null;

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  create(req: object): void { this.call.write(encodeWatchRequest({ createRequest: req })); }
  cancel(watchId: number): void { this.call.write(encodeWatchRequest({ cancelRequest: { watchId } })); }
  progress(): void { this.call.write(encodeWatchRequest({ progressRequest: {} })); }

  /** Waits until `pred(responses)` holds or the timeout passes (then throws with `what`). */
  async until(pred: (rs: WatchResp[]) => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.responses)) {
      if (this.ended) throw new Error(`watch stream ended while waiting for ${what}: ${this.error?.message ?? 'end'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (${this.responses.length} responses)`);
      await new Promise<void>((r) => { const t = setTimeout(r, Math.min(left, 200)); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Events received for a watch id (fragments joined), in order. */
  events(watchId?: number): WatchResp['events'] {
    const out: WatchResp['events'] = [];
    for (const r of this.responses) if (watchId === undefined || r.watchId === watchId) out.push(...r.events);
    return out;
  }

  close(): void {
    this.call.end();
    this.call.cancel();
    this.ownClient?.close();
  }
}

/**
 * A raw HTTP/2 gRPC Watch stream whose reading can be paused: while paused the client does not consume DATA
 * frames, so HTTP/2 flow control stops the server's sends (a stalled client).
 */
export class RawWatchStream {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private buf = Buffer.alloc(0);
  readonly responses: WatchResp[] = [];

  constructor(endpoint: string, windowBytes = 65_535) {
    this.session = http2.connect(`http://${grpcTarget(endpoint)}`, { settings: { initialWindowSize: windowBytes } });
    this.stream = this.session.request({
      ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers',
    });
    this.stream.on('data', (d: Buffer) => this.onData(d));
    this.stream.on('error', () => {});
    this.session.on('error', () => {});
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) break;
      this.responses.push(decodeWatchResponse(this.buf.subarray(5, 5 + len)));
      this.buf = this.buf.subarray(5 + len);
    }
  }

  send(req: object): void {
    const msg = encodeWatchRequest(req);
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    this.stream.write(frame);
  }

  pause(): void { this.stream.pause(); }
  resume(): void { this.stream.resume(); }

  events(): WatchResp['events'] {
    const out: WatchResp['events'] = [];
    for (const r of this.responses) out.push(...r.events);
    return out;
  }

  close(): void {
    this.stream.close();
    this.session.close();
  }
}

/** Reads one metric value (sum over label sets) from a /metrics endpoint. */
export async function metricValue(metricsUrl: string, name: string): Promise<number> {
  const res = await fetch(`${metricsUrl.replace(/\/$/, '')}/metrics`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
