/**
 * PeerTransport: long-lived member-to-member TCP connections carrying batched binary Raft messages, plus one
 * short-lived side connection per snapshot.
 *
 * Topology: every member dials one outgoing "stream" connection to each peer and only *sends* Raft messages on it;
 * the messages a peer sends to us arrive on the connection that peer dialed. So each pair of members has two
 * streams, each with a single writer, which keeps per-sender order trivially (one TCP byte stream per direction).
 * The dialer also sends a ping every few seconds; the listener echoes it (RTT metric, dead-peer detection).
 * Snapshots go on their own connection so megabytes of snapshot never sit in front of a heartbeat in a socket
 * buffer (same reason etcd rafthttp separates its stream and pipeline/snapshot paths).
 *
 * Wire format: see `frame.ts`. Rationale for plain TCP: see `README.md`.
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Message } from '../raft';
import { decodeMessages, encodeMessages } from '../raft';
import { metrics as processMetrics } from '../metrics/registry';
import { createLogger } from '../log';
import {
  ANSWER_BYTES,
  ANSWER_MAGIC,
  ByteQueue,
  ConnKind,
  FrameType,
  HANDSHAKE_BYTES,
  HANDSHAKE_MAGIC,
  HandshakeStatus,
  PROTOCOL_VERSION,
  decodeHandshake,
  encodeAnswer,
  encodeHandshake,
  frameHeader,
  handshakeStatusText,
  readFrame,
  smallFrame,
} from './frame';
import { parsePeerUrl } from './url';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_PEER_QUEUE_MAX_BYTES, HANDSHAKE_TIMEOUT_MS, DEFAULT_PING_INTERVAL_MS, SNAPSHOT_CHUNK_BYTES, SNAPSHOT_SEND_HIGH_WATER_BYTES, SNAPSHOT_IDLE_TIMEOUT_MS, SNAPSHOT_ACK_TIMEOUT_MS, MAX_INBOUND_CONNECTIONS, LOG_REPEAT_MS, LOG_REPEAT_TABLE_MAX, hex, errText, dialPeer, type TransportLogger, type SnapshotData, type PeerTransportOptions, type TransportStats, type Ctx } from './context';
import { PeerLink } from './peer-link';
import { SnapshotChunkStream } from './snapshot-stream';
import { serveHashKV } from './hash-kv-serve';


/**
 * Batched binary Raft message transport between members over plain TCP (see module docs and README.md).
 *
 * Lifecycle: `new` → `start()` (binds listeners, dials peers) → `send()`/`sendSnapshot()` → `close()`.
 * Never throws from `send()`; network failures surface as drops (metric `etcd_network_peer_sent_failures_total`,
 * `stats.droppedMessages`) and `onUnreachable(id)`.
 */
export class PeerTransport {
  /** Monotonic counters, see {@link TransportStats}. */
  readonly stats: TransportStats = { droppedMessages: 0, sentFrames: 0, receivedFrames: 0, rejectedConnections: 0 };

  private readonly opts: PeerTransportOptions;
  private readonly ctx: Ctx;
  private readonly links = new Map<number, PeerLink>();
  private readonly servers: net.Server[] = [];
  private readonly inbound = new Set<net.Socket>();
  /** Current inbound stream per sender member ID (a newer one replaces an older one). */
  private readonly inboundStreams = new Map<number, net.Socket>();
  private readonly snapshotSockets = new Set<net.Socket>();
  private readonly logRepeatAt = new Map<string, number>();
  private peerIds = new Set<number>();
  private started = false;
  private closed = false;
  private sending = false;
  private readonly groups = new Map<number, Message[]>();

  /**
   * Validates options (throws `Error` on a non-positive/unsafe member ID, an unparsable or TLS URL, or a peer
   * without URLs). Does no I/O.
   */
  constructor(opts: PeerTransportOptions) {
    if (!Number.isSafeInteger(opts.memberId) || opts.memberId <= 0) throw new Error(`invalid memberId ${opts.memberId}`);
    const clusterId = BigInt(opts.clusterId);
    if (clusterId < 0n || clusterId >= 1n << 64n) throw new Error(`invalid clusterId ${opts.clusterId}`);
    for (const u of opts.listenUrls) parsePeerUrl(u);
    this.opts = opts;
    const log: TransportLogger = opts.logger ?? createLogger('info', { bindings: { component: 'peer-transport' } });
    const self = this;
    this.ctx = {
      memberId: opts.memberId,
      localHex: hex(opts.memberId),
      clusterId,
      maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxQueueBytes: opts.maxQueueBytes ?? DEFAULT_PEER_QUEUE_MAX_BYTES,
      pingIntervalMs: opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      log,
      m: opts.metrics ?? processMetrics,
      stats: this.stats,
      isClosed: () => self.closed,
      unreachable: (id) => self.reportUnreachable(id),
      removed: () => self.opts.onRemoved?.(),
      logRepeat: (key, level, fields, msg) => self.logRepeat(key, level, fields, msg),
      dial: (hp) => dialPeer(hp, opts.security),
    };
    this.applyPeers(opts.peers, false);
  }

  /**
   * Bind every listen URL and start dialing all peers. Resolves the bound ports in `listenUrls` order (useful with
   * port 0). Rejects (after closing what was bound) if a listener cannot bind, e.g. EADDRINUSE.
   */
  async start(): Promise<{ ports: number[] }> {
    if (this.started) throw new Error('PeerTransport already started');
    if (this.closed) throw new Error('PeerTransport is closed');
    this.started = true;
    const ports: number[] = [];
    try {
      for (const u of this.opts.listenUrls) {
        const hp = parsePeerUrl(u);
        if (hp.secure && this.opts.security === undefined) throw new Error(`cannot listen on TLS for ${hp.host}:${hp.port}: KeyFile and CertFile are not presented`);
        const srv = hp.secure && this.opts.security !== undefined
          ? this.opts.security.createServer((s) => this.accept(s))
          : net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 10_000 }, (s) => this.accept(s));
        srv.maxConnections = MAX_INBOUND_CONNECTIONS;
        this.servers.push(srv);
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(hp.port, hp.host, () => {
            srv.off('error', reject);
            resolve();
          });
        });
        srv.on('error', (e) => this.ctx.log.error({ err: errText(e) }, 'peer listener error'));
        ports.push((srv.address() as net.AddressInfo).port);
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    this.ctx.log.info({ 'local-member-id': this.ctx.localHex, ports }, 'peer transport listening');
    for (const link of this.links.values()) link.connect();
    return { ports };
  }

  /**
   * Send messages to peers: groups `msgs` by `to` (keeping order within each group) and writes one frame per
   * destination (one `encodeMessages` call per peer batch). Never blocks or throws: messages to a down, unknown or
   * backlogged peer are dropped, counted (`etcd_network_peer_sent_failures_total{To}`) and reported via
   * `onUnreachable(id)` — Raft retransmits (Raft thesis §3.5: RPCs are retried, messages may be lost).
   * Route MsgSnap through {@link sendSnapshot}, not here, unless it fits one frame.
   */
  send(msgs: Message[]): void {
    if (this.closed || msgs.length === 0) return;
    const to0 = msgs[0].to;
    let single = true;
    for (let i = 1; i < msgs.length; i++) {
      if (msgs[i].to !== to0) {
        single = false;
        break;
      }
    }
    if (single) {
      this.sendBatch(to0, msgs);
      return;
    }
    // Reuse the grouping map unless re-entered from a callback during grouping.
    const groups = this.sending ? new Map<number, Message[]>() : this.groups;
    const outer = this.sending;
    this.sending = true;
    try {
      for (const m of msgs) {
        const g = groups.get(m.to);
        if (g) g.push(m);
        else groups.set(m.to, [m]);
      }
      for (const [to, g] of groups) this.sendBatch(to, g);
    } finally {
      groups.clear();
      this.sending = outer;
    }
  }

  private sendBatch(to: number, batch: Message[]): void {
    const link = this.links.get(to);
    if (!link) {
      this.stats.droppedMessages += batch.length;
      this.ctx.m.etcd_network_peer_sent_failures_total.inc({ To: hex(to) }, batch.length);
      this.logRepeat(`unknown-dest:${to}`, 'warn', { 'remote-peer-id': hex(to) }, 'dropped messages to unknown peer');
      return;
    }
    if (!link.accepting()) {
      link.drop(batch.length, 'peer unreachable');
      return;
    }
    let payload: Uint8Array;
    try {
      payload = encodeMessages(batch);
    } catch (e) {
      this.ctx.log.error({ 'remote-peer-id': link.hexId, err: errText(e) }, 'failed to encode messages');
      link.drop(batch.length, 'encode failed');
      return;
    }
    if (payload.length > this.ctx.maxFrameBytes) {
      this.logRepeat(`oversize:${to}`, 'warn', { 'remote-peer-id': link.hexId, bytes: payload.length, cap: this.ctx.maxFrameBytes }, 'message batch exceeds frame cap, dropped');
      link.drop(batch.length, 'batch too large');
      return;
    }
    link.enqueue(payload, batch.length);
  }

  /**
   * Stream a snapshot to peer `to` on a fresh connection (separate from the message stream, so heartbeats keep
   * flowing). `meta` is opaque to the transport (≤ maxFrameBytes; typically the encoded MsgSnap without data);
   * `data` is sent in {@link SNAPSHOT_CHUNK_BYTES} frames with socket backpressure.
   * Resolves once the receiver's `onSnapshot` resolved; rejects (Error) on refusal, connection failure,
   * {@link SNAPSHOT_IDLE_TIMEOUT_MS} of silence, or `close()`. Either way `onSnapshotStatus(to, ok)` is called first.
   * Source: etcd rafthttp snapshot sender (separate connection per snapshot); Raft thesis §5 (InstallSnapshot).
   */
  async sendSnapshot(to: number, meta: Uint8Array, data: SnapshotData): Promise<void> {
    const label = { To: hex(to) };
    const started = performance.now();
    let ok = false;
    const m = this.ctx.m;
    m.etcd_network_snapshot_send_inflights_total.inc(label);
    try {
      const link = this.links.get(to);
      if (this.closed || !this.started) throw new Error('transport not running');
      if (!link) throw new Error(`unknown peer ${hex(to)}`);
      if (meta.length > this.ctx.maxFrameBytes) throw new Error('snapshot metadata exceeds frame cap');
      const sent = await this.streamSnapshot(link, meta, data);
      m.etcd_network_peer_sent_bytes_total.inc(label, sent);
      ok = true;
      m.etcd_network_snapshot_send_success.inc(label);
      m.etcd_network_snapshot_send_total_duration_seconds.observe(label, (performance.now() - started) / 1000);
      this.ctx.log.info({ 'remote-peer-id': label.To, bytes: sent }, 'sent snapshot');
    } catch (e) {
      m.etcd_network_snapshot_send_failures.inc(label);
      this.ctx.log.warn({ 'remote-peer-id': label.To, err: errText(e) }, 'failed to send snapshot');
      throw e;
    } finally {
      m.etcd_network_snapshot_send_inflights_total.dec(label);
      try {
        this.opts.onSnapshotStatus?.(to, ok);
      } catch (e) {
        this.ctx.log.error({ err: errText(e) }, 'onSnapshotStatus threw');
      }
    }
  }

  /** Dial, handshake, send meta + chunks + end, await the ack. Returns bytes written. */
  private async streamSnapshot(link: PeerLink, meta: Uint8Array, data: SnapshotData): Promise<number> {
    const hp = link.currentUrl();
    const sock = this.ctx.dial(hp);
    this.snapshotSockets.add(sock);
    sock.setTimeout(SNAPSHOT_IDLE_TIMEOUT_MS, () => sock.destroy(new Error('snapshot connection idle timeout')));
    const rq = new ByteQueue();
    let failure: Error | undefined;
    let connected = false;
    let answer = -1;
    let ack = -1;
    let wake: (() => void) | undefined;
    const poke = (): void => wake?.();
    sock.on('connect', () => {
      connected = true;
      poke();
    });
    sock.on('data', (chunk: Buffer) => {
      rq.push(chunk);
      if (answer < 0 && rq.length >= ANSWER_BYTES) {
        const a = rq.take(ANSWER_BYTES);
        answer = a.readUInt32LE(0) === ANSWER_MAGIC ? a[6] : 255;
      }
      if (answer === HandshakeStatus.Ok && ack < 0) {
        const r = readFrame(rq, 16);
        if (r.kind === 'error') failure ??= new Error(`bad reply from peer: ${r.reason}`);
        else if (r.kind === 'frame') {
          if (r.type === FrameType.SnapAck && r.payload.length === 1) ack = r.payload[0];
          else failure ??= new Error(`unexpected frame type ${r.type} on snapshot connection`);
        }
      }
      poke();
    });
    sock.on('drain', poke);
    sock.on('error', (e) => {
      failure ??= e;
      poke();
    });
    sock.on('close', () => {
      failure ??= new Error('snapshot connection closed');
      poke();
    });
    const until = (cond: () => boolean): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const check = (): boolean => {
          if (cond()) resolve();
          else if (failure || this.closed) reject(failure ?? new Error('transport closed'));
          else return false;
          wake = undefined;
          return true;
        };
        if (!check()) wake = check;
      });
    let sent = 0;
    const writeFrame = async (type: FrameType, payload: Uint8Array): Promise<void> => {
      sock.cork();
      sock.write(frameHeader(type, payload.length));
      if (payload.length > 0) sock.write(payload);
      sock.uncork();
      sent += payload.length + 5;
      if (sock.writableLength > SNAPSHOT_SEND_HIGH_WATER_BYTES) {
        await until(() => !sock.destroyed && sock.writableLength <= SNAPSHOT_SEND_HIGH_WATER_BYTES);
      }
      if (failure || ack >= 0) throw failure ?? new Error(ack === 1 ? 'peer acknowledged before end of data' : 'snapshot refused by peer');
    };
    try {
      await until(() => connected);
      sock.write(encodeHandshake(ConnKind.Snapshot, this.ctx.clusterId, this.ctx.memberId, link.id));
      await until(() => answer >= 0);
      if (answer !== HandshakeStatus.Ok) {
        const reason = answer === 255 ? 'bad handshake answer' : handshakeStatusText(answer);
        this.ctx.log.error({ 'remote-peer-id': link.hexId, reason }, `snapshot rejected: ${reason}`);
        throw new Error(`rejected: ${reason}`);
      }
      await writeFrame(FrameType.SnapMeta, meta);
      if (Buffer.isBuffer(data)) {
        for (let off = 0; off < data.length; off += SNAPSHOT_CHUNK_BYTES) {
          await writeFrame(FrameType.SnapChunk, data.subarray(off, Math.min(data.length, off + SNAPSHOT_CHUNK_BYTES)));
        }
      } else {
        for await (const chunk of data) {
          for (let off = 0; off < chunk.length; off += SNAPSHOT_CHUNK_BYTES) {
            await writeFrame(FrameType.SnapChunk, chunk.subarray(off, Math.min(chunk.length, off + SNAPSHOT_CHUNK_BYTES)));
          }
        }
      }
      await writeFrame(FrameType.SnapEnd, new Uint8Array(0));
      sock.setTimeout(SNAPSHOT_ACK_TIMEOUT_MS);
      await until(() => ack >= 0);
      if (ack !== 1) throw new Error('snapshot refused by peer (onSnapshot failed or missing)');
      return sent;
    } catch (e) {
      // An early ack=1 means the receiver finished without the rest of the data: that is success.
      if (ack === 1) return sent;
      throw e;
    } finally {
      wake = undefined;
      this.snapshotSockets.delete(sock);
      sock.destroy();
    }
  }

  /**
   * Replace the membership (member ID → peer URLs): dials new members, closes streams to and from removed ones,
   * updates URLs of existing ones (used from the next dial). Entries for our own ID are ignored.
   */
  setPeers(peers: Map<number, string[]>): void {
    if (this.closed) return;
    this.applyPeers(peers, this.started);
  }

  private applyPeers(peers: Map<number, string[]>, dial: boolean): void {
    const next = new Set<number>();
    for (const [id, urls] of peers) {
      if (id === this.opts.memberId) continue;
      if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`invalid peer member ID ${id}`);
      if (urls.length === 0) throw new Error(`peer ${hex(id)} has no URLs`);
      const hps = urls.map(parsePeerUrl);
      next.add(id);
      const link = this.links.get(id);
      if (link) link.urls = hps;
      else {
        const l = new PeerLink(id, hps, this.ctx);
        this.links.set(id, l);
        if (dial) l.connect();
      }
    }
    for (const [id, link] of this.links) {
      if (next.has(id)) continue;
      link.close();
      this.links.delete(id);
      this.inboundStreams.get(id)?.destroy();
    }
    this.peerIds = next;
  }

  /**
   * Bytes queued for peer `id` not yet written to the kernel (0 for unknown peers). Lets a host or a benchmark
   * pace itself below the per-peer cap instead of having batches dropped.
   */
  queuedBytes(id: number): number {
    return this.links.get(id)?.queuedBytes() ?? 0;
  }

  /** IDs of peers whose outgoing stream is currently established. */
  activePeers(): number[] {
    const out: number[] = [];
    for (const [id, l] of this.links) if (l.state === 'open') out.push(id);
    return out;
  }

  /**
   * Close listeners, all streams and snapshot connections, and every timer. In-flight `sendSnapshot` calls
   * reject. Idempotent; resolves once the listeners are closed (no handles remain).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.links.values()) link.close();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    this.inboundStreams.clear();
    for (const s of this.snapshotSockets) s.destroy();
    this.snapshotSockets.clear();
    await Promise.all(this.servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
    this.servers.length = 0;
  }

  private reportUnreachable(id: number): void {
    const cb = this.opts.onUnreachable;
    if (!cb) return;
    try {
      cb(id);
    } catch (e) {
      this.ctx.log.error({ err: errText(e) }, 'onUnreachable threw');
    }
  }

  private logRepeat(key: string, level: 'warn' | 'error', fields: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    const last = this.logRepeatAt.get(key);
    if (last !== undefined && now - last < LOG_REPEAT_MS) {
      this.ctx.log.debug(fields, msg);
      return;
    }
    if (this.logRepeatAt.size >= LOG_REPEAT_TABLE_MAX) this.logRepeatAt.clear();
    this.logRepeatAt.set(key, now);
    this.ctx.log[level](fields, msg);
  }

  // --- inbound -----------------------------------------------------------------------------------------------

  private accept(sock: net.Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    this.inbound.add(sock);
    sock.setNoDelay(true);
    const remote = `${sock.remoteAddress}:${sock.remotePort}`;
    const rq = new ByteQueue();
    let kind = 0;
    let from = 0;
    let fromHex = '';
    let rejected = false;
    let receivedBytes: { inc(n: number): void } | undefined;
    let snap: { stream: SnapshotChunkStream; settled: boolean; started: number } | undefined;
    let snapMetaSeen = false;
    const hsTimer = setTimeout(() => {
      if (kind === 0 || rejected) this.dropInbound(sock, remote, 'handshake timeout', rejected ? undefined : 'warn');
    }, HANDSHAKE_TIMEOUT_MS);

    const violation = (reason: string): void => {
      this.stats.rejectedConnections++;
      if (fromHex) this.ctx.m.etcd_network_peer_received_failures_total.inc({ From: fromHex });
      this.dropInbound(sock, remote, reason, 'warn', fromHex);
    };

    const reject = (status: HandshakeStatus, fields: Record<string, unknown>): void => {
      rejected = true;
      this.stats.rejectedConnections++;
      const reason = handshakeStatusText(status);
      this.logRepeat(`in:${remote.split(':')[0]}:${String(fields['remote-peer-id'])}:${status}`, 'warn',
        { 'local-member-id': this.ctx.localHex, remote, reason, ...fields }, `refused peer connection: ${reason}`);
      sock.end(encodeAnswer(status));
    };

    const onSnapFrame = (type: number, payload: Buffer): void => {
      if (!snapMetaSeen) {
        if (type !== FrameType.SnapMeta) return violation(`expected snapshot metadata, got frame type ${type}`);
        snapMetaSeen = true;
        const label = { From: fromHex };
        const handler = this.opts.onSnapshot;
        if (!handler) {
          this.ctx.log.warn({ 'remote-peer-id': fromHex }, 'refused snapshot: no onSnapshot handler');
          this.ctx.m.etcd_network_snapshot_receive_failures.inc(label);
          sock.end(smallFrame(FrameType.SnapAck, Uint8Array.of(0)));
          return;
        }
        const stream = new SnapshotChunkStream(sock);
        const st = { stream, settled: false, started: performance.now() };
        snap = st;
        this.ctx.m.etcd_network_snapshot_receive_inflights_total.inc(label);
        const settle = (ok: boolean, err?: unknown): void => {
          if (st.settled) return;
          st.settled = true;
          stream.abandon();
          this.ctx.m.etcd_network_snapshot_receive_inflights_total.dec(label);
          if (ok) {
            this.ctx.m.etcd_network_snapshot_receive_success.inc(label);
            this.ctx.m.etcd_network_snapshot_receive_total_duration_seconds.observe(label, (performance.now() - st.started) / 1000);
            this.ctx.log.info({ 'remote-peer-id': fromHex }, 'received and installed snapshot');
          } else {
            this.ctx.m.etcd_network_snapshot_receive_failures.inc(label);
            this.ctx.log.warn({ 'remote-peer-id': fromHex, err: errText(err) }, 'failed to receive snapshot');
          }
          if (!sock.destroyed) sock.end(smallFrame(FrameType.SnapAck, Uint8Array.of(ok ? 1 : 0)));
        };
        let p: Promise<void>;
        try {
          p = handler(from, payload, stream);
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(() => settle(true), (e) => settle(false, e));
        sock.once('close', () => {
          stream.fail(new Error('snapshot connection closed before end of data'));
        });
        return;
      }
      if (type === FrameType.SnapChunk) snap?.stream.push(payload);
      else if (type === FrameType.SnapEnd) {
        sock.setTimeout(0); // installing may take long; the sender bounds the wait (SNAPSHOT_ACK_TIMEOUT_MS)
        snap?.stream.end();
      }
      else violation(`unexpected frame type ${type} on snapshot connection`);
    };

    const onStreamFrame = (type: number, payload: Buffer): void => {
      if (type === FrameType.Messages) {
        let msgs: Message[];
        try {
          msgs = decodeMessages(payload);
        } catch (e) {
          violation(`undecodable message batch: ${errText(e)}`);
          return;
        }
        this.stats.receivedFrames++;
        try {
          this.opts.onMessages(msgs);
        } catch (e) {
          this.ctx.log.error({ 'remote-peer-id': fromHex, err: errText(e) }, 'onMessages threw');
        }
      } else if (type === FrameType.Ping) {
        if (payload.length !== 8) return violation('bad ping frame');
        sock.write(smallFrame(FrameType.Pong, payload));
      } else {
        violation(`unexpected frame type ${type} on message stream`);
      }
    };

    sock.on('data', (chunk: Buffer) => {
      if (rejected) return;
      rq.push(chunk);
      if (kind === 0) {
        if (rq.length < HANDSHAKE_BYTES) return;
        const hs = decodeHandshake(rq.take(HANDSHAKE_BYTES));
        if (hs.magic !== HANDSHAKE_MAGIC) return violation('bad handshake magic (not an etcetera peer?)');
        const fields = {
          'remote-peer-id': hex(hs.from),
          'remote-cluster-id': hex(hs.clusterId),
          'local-cluster-id': hex(this.ctx.clusterId),
        };
        if (hs.version !== PROTOCOL_VERSION) return reject(HandshakeStatus.BadVersion, { ...fields, version: hs.version });
        if (hs.kind === ConnKind.Members) {
          clearTimeout(hsTimer);
          kind = hs.kind;
          const answer = this.opts.onMembersRequest;
          if (!answer) return reject(HandshakeStatus.BadKind, fields);
          let payload: Uint8Array;
          try {
            payload = answer();
          } catch (e) {
            this.ctx.log.error({ err: errText(e) }, 'onMembersRequest threw');
            return violation('membership unavailable');
          }
          rejected = true; // nothing more is read from a Members connection
          sock.write(encodeAnswer(HandshakeStatus.Ok));
          sock.end(Buffer.concat([frameHeader(FrameType.Members, payload.length), payload]));
          return;
        }
        if (hs.kind === ConnKind.HashKV) {
          const answer = this.opts.onHashKVRequest;
          if (!answer) return reject(HandshakeStatus.BadKind, fields);
          if (hs.clusterId !== this.ctx.clusterId) return reject(HandshakeStatus.ClusterIdMismatch, fields);
          clearTimeout(hsTimer);
          kind = hs.kind;
          rejected = true; // the connection is serveHashKV's from here
          return serveHashKV(sock, rq, answer, this.ctx.log);
        }
        if (hs.kind !== ConnKind.Stream && hs.kind !== ConnKind.Snapshot) return reject(HandshakeStatus.BadKind, fields);
        if (hs.clusterId !== this.ctx.clusterId) return reject(HandshakeStatus.ClusterIdMismatch, fields);
        if (hs.to !== BigInt(this.ctx.memberId)) return reject(HandshakeStatus.WrongReceiver, { ...fields, 'addressed-to': hex(hs.to) });
        if (hs.from <= BigInt(Number.MAX_SAFE_INTEGER) && this.opts.isRemoved?.(Number(hs.from))) {
          return reject(HandshakeStatus.MemberRemoved, fields);
        }
        if (hs.from > BigInt(Number.MAX_SAFE_INTEGER) || !this.peerIds.has(Number(hs.from))) {
          return reject(HandshakeStatus.UnknownMember, fields);
        }
        clearTimeout(hsTimer);
        kind = hs.kind;
        from = Number(hs.from);
        fromHex = hex(from);
        receivedBytes = this.ctx.m.etcd_network_peer_received_bytes_total.labels({ From: fromHex });
        sock.write(encodeAnswer(HandshakeStatus.Ok));
        if (kind === ConnKind.Stream) {
          const old = this.inboundStreams.get(from);
          this.inboundStreams.set(from, sock);
          if (old && old !== sock) this.dropInbound(old, 'old stream', 'replaced by a newer stream from the same peer', 'debug', fromHex);
        } else {
          sock.setTimeout(SNAPSHOT_IDLE_TIMEOUT_MS, () => this.dropInbound(sock, remote, 'snapshot connection idle timeout', 'warn', fromHex));
        }
      }
      for (;;) {
        if (sock.destroyed || rejected) return;
        const r = readFrame(rq, this.ctx.maxFrameBytes);
        if (r.kind === 'more') return;
        if (r.kind === 'error') return violation(r.reason);
        receivedBytes?.inc(r.payload.length + 5);
        if (kind === ConnKind.Stream) onStreamFrame(r.type, r.payload);
        else onSnapFrame(r.type, r.payload);
      }
    });
    sock.on('error', (e) => {
      this.ctx.log.debug({ remote, 'remote-peer-id': fromHex, err: errText(e) }, 'inbound peer connection error');
    });
    sock.on('close', () => {
      clearTimeout(hsTimer);
      this.inbound.delete(sock);
      if (kind === ConnKind.Stream && this.inboundStreams.get(from) === sock) this.inboundStreams.delete(from);
      rq.clear();
    });
  }

  private dropInbound(sock: net.Socket, remote: string, reason: string, level: 'warn' | 'debug' | undefined, fromHex = ''): void {
    if (sock.destroyed) return;
    if (level) this.ctx.log[level]({ 'local-member-id': this.ctx.localHex, remote, 'remote-peer-id': fromHex || undefined, reason }, 'closing inbound peer connection');
    sock.destroy();
  }
}
