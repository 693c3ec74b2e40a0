/**
 * The outgoing stream to one peer (see peer-transport.ts for the topology): dial, handshake, write batches, ping,
 * redial with backoff.
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  ANSWER_BYTES,
  ANSWER_MAGIC,
  ByteQueue,
  ConnKind,
  FrameType,
  HandshakeStatus,
  encodeHandshake,
  frameHeader,
  handshakeStatusText,
  readFrame,
  smallFrame,
} from './frame';
import { HostPort } from './url';
import { RECONNECT_BACKOFF_MIN_MS, RECONNECT_BACKOFF_MAX_MS, RECONNECT_JITTER, HANDSHAKE_TIMEOUT_MS, PONG_TIMEOUT_MS, hex, type Ctx } from './context';


type LinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/**
 * The outgoing stream to one peer: dial, handshake, write batches, ping, redial with backoff.
 * Source of the design: etcd rafthttp's long-lived "stream" (one per peer) — re-derived, not ported.
 */
export class PeerLink {
  readonly hexId: string;
  urls: HostPort[];
  private urlIdx = 0;
  state: LinkState = 'idle';
  /** Wall-clock ms when the stream last became open; 0 while it is not (etcd's ActiveSince). */
  openedAtMs = 0;
  private sock: net.Socket | undefined;
  private readonly rq = new ByteQueue();
  private answered = false;
  /** Frames (header, payload, header, payload, ...) queued while the handshake runs. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingMsgs = 0;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastPongAt = 0;
  private corkedSock: net.Socket | undefined;
  private unflushedBytes = 0;
  private lastFailure = '';
  private readonly sentBytes;
  private readonly sentFailures;
  private readonly rtt;
  private readonly uncorkFn = (): void => this.uncork();
  private readonly pingPayload = Buffer.alloc(8);

  constructor(
    readonly id: number,
    urls: HostPort[],
    private readonly ctx: Ctx,
  ) {
    this.urls = urls;
    this.hexId = hex(id);
    this.sentBytes = ctx.m.etcd_network_peer_sent_bytes_total.labels({ To: this.hexId });
    this.sentFailures = ctx.m.etcd_network_peer_sent_failures_total.labels({ To: this.hexId });
    this.rtt = ctx.m.etcd_network_peer_round_trip_time_seconds.labels({ To: this.hexId });
  }

  /** The URL currently dialed (snapshot connections use it too). */
  currentUrl(): HostPort {
    return this.urls[this.urlIdx % this.urls.length];
  }

  /** True if a batch would currently be queued rather than dropped outright (no encoding wasted otherwise). */
  accepting(): boolean {
    return this.state === 'open' || this.state === 'connecting';
  }

  /** Start dialing (no-op unless idle or backing off). */
  connect(): void {
    if (this.ctx.isClosed() || this.state === 'closed' || this.state === 'open' || this.state === 'connecting') return;
    this.clearTimer();
    const hp = this.currentUrl();
    this.state = 'connecting';
    this.answered = false;
    this.rq.clear();
    const sock = this.ctx.dial(hp);
    this.sock = sock;
    this.timer = setTimeout(() => this.abort(sock, 'handshake timeout'), HANDSHAKE_TIMEOUT_MS);
    sock.on('connect', () => {
      sock.write(encodeHandshake(ConnKind.Stream, this.ctx.clusterId, this.ctx.memberId, this.id));
    });
    sock.on('data', (chunk: Buffer) => this.onData(sock, chunk));
    sock.on('error', (err) => {
      if (sock === this.sock) this.noteFailure(err.message);
    });
    sock.on('close', () => this.onClose(sock));
  }

  private abort(sock: net.Socket, reason: string): void {
    if (sock !== this.sock) return;
    this.noteFailure(reason);
    sock.destroy();
  }

  private noteFailure(reason: string): void {
    const wasOpen = this.state === 'open';
    const fields = { 'local-member-id': this.ctx.localHex, 'remote-peer-id': this.hexId, reason, url: `${this.currentUrl().host}:${this.currentUrl().port}` };
    if (wasOpen || reason !== this.lastFailure) this.ctx.log.warn(fields, 'peer stream failed');
    else this.ctx.log.debug(fields, 'peer stream failed');
    this.lastFailure = reason;
  }

  private onData(sock: net.Socket, chunk: Buffer): void {
    if (sock !== this.sock) return;
    this.rq.push(chunk);
    if (!this.answered) {
      if (this.rq.length < ANSWER_BYTES) return;
      const ans = this.rq.take(ANSWER_BYTES);
      if (ans.readUInt32LE(0) !== ANSWER_MAGIC) {
        this.abort(sock, 'bad handshake answer (not an etcetera peer port?)');
        return;
      }
      const status = ans[6];
      if (status !== HandshakeStatus.Ok) {
        const reason = handshakeStatusText(status);
        this.ctx.logRepeat(`out:${this.id}:${status}`, 'error', {
          'local-member-id': this.ctx.localHex,
          'remote-peer-id': this.hexId,
          'local-cluster-id': hex(this.ctx.clusterId),
          reason,
        }, `rejected: ${reason}`);
        this.lastFailure = `rejected: ${reason}`;
        sock.destroy();
        if (status === HandshakeStatus.MemberRemoved) this.ctx.removed();
        return;
      }
      this.answered = true;
      this.onOpen(sock);
    }
    for (;;) {
      if (sock.destroyed) return;
      const r = readFrame(this.rq, this.ctx.maxFrameBytes);
      if (r.kind === 'more') return;
      if (r.kind === 'error') {
        this.abort(sock, r.reason);
        return;
      }
      if (r.type === FrameType.Pong && r.payload.length === 8) {
        const now = performance.now();
        this.lastPongAt = now;
        const sentAt = r.payload.readDoubleLE(0);
        if (sentAt > 0 && sentAt <= now) this.rtt.observe((now - sentAt) / 1000);
      } else {
        this.abort(sock, `unexpected frame type ${r.type} on outgoing stream`);
        return;
      }
    }
  }

  private onOpen(sock: net.Socket): void {
    this.clearTimer();
    this.state = 'open';
    this.openedAtMs = Date.now();
    this.attempt = 0;
    this.lastFailure = '';
    this.lastPongAt = performance.now();
    this.ctx.m.etcd_network_active_peers.inc({ Local: this.ctx.localHex, Remote: this.hexId });
    this.ctx.log.info({ 'local-member-id': this.ctx.localHex, 'remote-peer-id': this.hexId }, 'peer stream established');
    if (this.pending.length > 0) {
      this.cork(sock);
      for (const b of this.pending) sock.write(b);
      this.unflushedBytes += this.pendingBytes;
      this.ctx.stats.sentFrames += this.pending.length / 2;
      this.pending = [];
      this.pendingBytes = 0;
      this.pendingMsgs = 0;
    }
    this.ping();
    this.pingTimer = setInterval(() => this.ping(), this.ctx.pingIntervalMs);
  }

  private ping(): void {
    const sock = this.sock;
    if (!sock || this.state !== 'open') return;
    const now = performance.now();
    if (now - this.lastPongAt > PONG_TIMEOUT_MS) {
      this.abort(sock, `no pong for ${PONG_TIMEOUT_MS} ms`);
      return;
    }
    this.pingPayload.writeDoubleLE(now, 0);
    // smallFrame copies, so reusing pingPayload is safe.
    const f = smallFrame(FrameType.Ping, this.pingPayload);
    this.cork(sock);
    sock.write(f);
    this.unflushedBytes += f.length;
  }

  private onClose(sock: net.Socket): void {
    if (sock !== this.sock) return;
    this.sock = undefined;
    this.openedAtMs = 0;
    this.clearTimer();
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    const wasOpen = this.state === 'open';
    if (wasOpen) {
      this.ctx.m.etcd_network_active_peers.dec({ Local: this.ctx.localHex, Remote: this.hexId });
      this.ctx.m.etcd_network_disconnected_peers_total.inc({ Local: this.ctx.localHex, Remote: this.hexId });
      if (this.lastFailure === '') this.noteFailure('connection closed by peer');
    } else if (this.lastFailure === '') {
      this.noteFailure('connection closed');
    }
    if (this.pendingMsgs > 0) this.countDrop(this.pendingMsgs);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingMsgs = 0;
    if (this.state === 'closed' || this.ctx.isClosed()) {
      this.state = 'closed';
      return;
    }
    if (wasOpen) this.ctx.unreachable(this.id);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.state = 'backoff';
    const base = Math.min(RECONNECT_BACKOFF_MAX_MS, RECONNECT_BACKOFF_MIN_MS * 2 ** Math.min(this.attempt, 16));
    const delay = Math.min(RECONNECT_BACKOFF_MAX_MS, base * (1 - RECONNECT_JITTER + 2 * RECONNECT_JITTER * Math.random()));
    this.attempt++;
    if (this.urls.length > 1) this.urlIdx = (this.urlIdx + 1) % this.urls.length;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private cork(sock: net.Socket): void {
    if (this.corkedSock) return;
    sock.cork();
    this.corkedSock = sock;
    process.nextTick(this.uncorkFn);
  }

  private uncork(): void {
    const s = this.corkedSock;
    this.corkedSock = undefined;
    if (s && !s.destroyed) s.uncork();
    if (this.unflushedBytes > 0) {
      this.sentBytes.inc(this.unflushedBytes);
      this.unflushedBytes = 0;
    }
  }

  /**
   * Queue one frame of `nMsgs` messages (already encoded `payload`). Never blocks; drops and counts when the
   * peer is down or the queue is over its cap.
   */
  enqueue(payload: Uint8Array, nMsgs: number): void {
    const bytes = payload.length + 5;
    const cap = this.ctx.maxQueueBytes;
    if (this.state === 'open' && this.sock) {
      const queued = this.sock.writableLength;
      if (queued > 0 && queued + bytes > cap) {
        this.drop(nMsgs, 'queue full');
        return;
      }
      this.cork(this.sock);
      this.sock.write(frameHeader(FrameType.Messages, payload.length));
      this.sock.write(payload);
      this.unflushedBytes += bytes;
      this.ctx.stats.sentFrames++;
      return;
    }
    if (this.state === 'connecting') {
      if (this.pendingBytes > 0 && this.pendingBytes + bytes > cap) {
        this.drop(nMsgs, 'queue full');
        return;
      }
      this.pending.push(frameHeader(FrameType.Messages, payload.length), Buffer.from(payload.buffer, payload.byteOffset, payload.length));
      this.pendingBytes += bytes;
      this.pendingMsgs += nMsgs;
      return;
    }
    this.drop(nMsgs, 'peer unreachable');
  }

  /** Bytes queued for this peer and not yet handed to the kernel (bytes). */
  queuedBytes(): number {
    if (this.state === 'open' && this.sock) return this.sock.writableLength;
    return this.pendingBytes;
  }

  /** Count `n` dropped messages and tell the host. */
  drop(n: number, reason: string): void {
    this.ctx.log.debug({ 'remote-peer-id': this.hexId, reason, messages: n }, 'dropped messages to peer');
    this.countDrop(n);
    this.ctx.unreachable(this.id);
  }

  private countDrop(n: number): void {
    this.sentFailures.inc(n);
    this.ctx.stats.droppedMessages += n;
  }

  /** Tear down for good (transport close or member removed). */
  close(): void {
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.clearTimer();
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    const s = this.sock;
    this.sock = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingMsgs = 0;
    if (wasOpen) this.ctx.m.etcd_network_active_peers.dec({ Local: this.ctx.localHex, Remote: this.hexId });
    if (s) s.destroy();
    if (this.unflushedBytes > 0) {
      this.sentBytes.inc(this.unflushedBytes);
      this.unflushedBytes = 0;
    }
  }
}

