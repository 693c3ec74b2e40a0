/**
 * The inbound side of the peer transport: connections other members dialed to us. Each starts with a handshake
 * (./frame.ts: magic, version, kind, cluster, sender, receiver) answered Ok or refused with a status; then it is a
 * message stream (Raft message batches in the sender's order, pings echoed), a snapshot connection
 * (./snapshot-receive.ts) or a Members query (answered once, then closed). A newer stream from the same sender
 * replaces the older one. Bounds: MAX_INBOUND_CONNECTIONS per listener (set by the transport), HANDSHAKE_TIMEOUT_MS
 * to finish the handshake, maxFrameBytes per frame, SNAPSHOT_IDLE_TIMEOUT_MS of silence on a snapshot connection.
 */
import type * as net from 'node:net';
import type { Message } from '../raft';
import { decodeMessages } from '../raft';
import {
  ByteQueue,
  ConnKind,
  FrameType,
  HANDSHAKE_BYTES,
  HANDSHAKE_MAGIC,
  HandshakeStatus,
  PROTOCOL_VERSION,
  decodeHandshake,
  encodeAnswer,
  frameHeader,
  handshakeStatusText,
  readFrame,
  smallFrame,
} from './frame';
import { HANDSHAKE_TIMEOUT_MS, SNAPSHOT_IDLE_TIMEOUT_MS, hex, errText, type PeerTransportOptions, type Ctx } from './context';
import { SnapshotReceive } from './snapshot-receive';
import { serveHashKV } from './hash-kv-serve';

/** What the inbound side needs of the transport's options (the host's handlers). */
export type InboundHandlers = Pick<PeerTransportOptions, 'onMessages' | 'onSnapshot' | 'onMembersRequest' | 'onHashKVRequest' | 'isRemoved'>;

/** Every accepted peer connection, and the current message stream per sender. */
export class InboundConnections {
  private readonly sockets = new Set<net.Socket>();
  /** Current inbound stream per sender member ID (a newer one replaces an older one). */
  private readonly streams = new Map<number, net.Socket>();

  /** `isPeer(id)`: true for a current member (connections from others are refused UnknownMember). */
  constructor(
    private readonly ctx: Ctx,
    private readonly handlers: InboundHandlers,
    private readonly isPeer: (id: number) => boolean,
  ) {}

  /** Closes the message stream from member `id` (it was removed from the membership). */
  dropStreamFrom(id: number): void {
    this.streams.get(id)?.destroy();
  }

  /** Destroys every inbound connection (transport close). */
  close(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.streams.clear();
  }

  /** A listener's connection callback: handshake, then frames by connection kind. */
  accept(sock: net.Socket): void {
    const ctx = this.ctx;
    if (ctx.isClosed()) {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.setNoDelay(true);
    const remote = `${sock.remoteAddress}:${sock.remotePort}`;
    const rq = new ByteQueue();
    let kind = 0;
    let from = 0;
    let fromHex = '';
    let rejected = false;
    let receivedBytes: { inc(n: number): void } | undefined;
    let snap: SnapshotReceive | null = null;
    const hsTimer = setTimeout(() => {
      if (kind === 0 || rejected) this.drop(sock, remote, 'handshake timeout', rejected ? undefined : 'warn');
    }, HANDSHAKE_TIMEOUT_MS);

    const violation = (reason: string): void => {
      ctx.stats.rejectedConnections++;
      if (fromHex) ctx.m.etcd_network_peer_received_failures_total.inc({ From: fromHex });
      this.drop(sock, remote, reason, 'warn', fromHex);
    };

    const reject = (status: HandshakeStatus, fields: Record<string, unknown>): void => {
      rejected = true;
      ctx.stats.rejectedConnections++;
      const reason = handshakeStatusText(status);
      ctx.logRepeat(`in:${remote.split(':')[0]}:${String(fields['remote-peer-id'])}:${status}`, 'warn',
        { 'local-member-id': ctx.localHex, remote, reason, ...fields }, `refused peer connection: ${reason}`);
      sock.end(encodeAnswer(status));
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
        ctx.stats.receivedFrames++;
        try {
          this.handlers.onMessages(msgs);
        } catch (e) {
          ctx.log.error({ 'remote-peer-id': fromHex, err: errText(e) }, 'onMessages threw');
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
          'local-cluster-id': hex(ctx.clusterId),
        };
        if (hs.version !== PROTOCOL_VERSION) return reject(HandshakeStatus.BadVersion, { ...fields, version: hs.version });
        if (hs.kind === ConnKind.Members) {
          clearTimeout(hsTimer);
          kind = hs.kind;
          const answer = this.handlers.onMembersRequest;
          if (!answer) return reject(HandshakeStatus.BadKind, fields);
          let payload: Uint8Array;
          try {
            payload = answer();
          } catch (e) {
            ctx.log.error({ err: errText(e) }, 'onMembersRequest threw');
            return violation('membership unavailable');
          }
          rejected = true; // nothing more is read from a Members connection
          sock.write(encodeAnswer(HandshakeStatus.Ok));
          sock.end(Buffer.concat([frameHeader(FrameType.Members, payload.length), payload]));
          return;
        }
        if (hs.kind === ConnKind.HashKV) {
          const answer = this.handlers.onHashKVRequest;
          if (!answer) return reject(HandshakeStatus.BadKind, fields);
          if (hs.clusterId !== ctx.clusterId) return reject(HandshakeStatus.ClusterIdMismatch, fields);
          clearTimeout(hsTimer);
          kind = hs.kind;
          rejected = true; // the connection is serveHashKV's from here
          return serveHashKV(sock, rq, answer, ctx.log);
        }
        if (hs.kind !== ConnKind.Stream && hs.kind !== ConnKind.Snapshot) return reject(HandshakeStatus.BadKind, fields);
        if (hs.clusterId !== ctx.clusterId) return reject(HandshakeStatus.ClusterIdMismatch, fields);
        if (hs.to !== BigInt(ctx.memberId)) return reject(HandshakeStatus.WrongReceiver, { ...fields, 'addressed-to': hex(hs.to) });
        if (hs.from <= BigInt(Number.MAX_SAFE_INTEGER) && this.handlers.isRemoved?.(Number(hs.from))) {
          return reject(HandshakeStatus.MemberRemoved, fields);
        }
        if (hs.from > BigInt(Number.MAX_SAFE_INTEGER) || !this.isPeer(Number(hs.from))) {
          return reject(HandshakeStatus.UnknownMember, fields);
        }
        clearTimeout(hsTimer);
        kind = hs.kind;
        from = Number(hs.from);
        fromHex = hex(from);
        receivedBytes = ctx.m.etcd_network_peer_received_bytes_total.labels({ From: fromHex });
        sock.write(encodeAnswer(HandshakeStatus.Ok));
        if (kind === ConnKind.Stream) {
          const old = this.streams.get(from);
          this.streams.set(from, sock);
          if (old && old !== sock) this.drop(old, 'old stream', 'replaced by a newer stream from the same peer', 'debug', fromHex);
        } else {
          snap = new SnapshotReceive(sock, from, fromHex, ctx, this.handlers.onSnapshot, violation);
          sock.setTimeout(SNAPSHOT_IDLE_TIMEOUT_MS, () => this.drop(sock, remote, 'snapshot connection idle timeout', 'warn', fromHex));
        }
      }
      for (;;) {
        if (sock.destroyed || rejected) return;
        const r = readFrame(rq, ctx.maxFrameBytes);
        if (r.kind === 'more') return;
        if (r.kind === 'error') return violation(r.reason);
        receivedBytes?.inc(r.payload.length + 5);
        if (snap === null) onStreamFrame(r.type, r.payload);
        else snap.frame(r.type, r.payload);
      }
    });
    sock.on('error', (e) => {
      ctx.log.debug({ remote, 'remote-peer-id': fromHex, err: errText(e) }, 'inbound peer connection error');
    });
    sock.on('close', () => {
      clearTimeout(hsTimer);
      this.sockets.delete(sock);
      if (kind === ConnKind.Stream && this.streams.get(from) === sock) this.streams.delete(from);
      rq.clear();
    });
  }

  private drop(sock: net.Socket, remote: string, reason: string, level: 'warn' | 'debug' | undefined, fromHex = ''): void {
    if (sock.destroyed) return;
    if (level) this.ctx.log[level]({ 'local-member-id': this.ctx.localHex, remote, 'remote-peer-id': fromHex || undefined, reason }, 'closing inbound peer connection');
    sock.destroy();
  }
}
