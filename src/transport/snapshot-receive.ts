/**
 * The receiving end of one snapshot connection, after its handshake (etcd rafthttp snapshotHandler; Raft thesis §5
 * InstallSnapshot): the first frame is the sender's metadata, which starts the host's `onSnapshot` with a
 * backpressured chunk stream (./snapshot-stream.ts); chunks feed it, the end frame ends it, and the host's answer
 * goes back as one SnapAck frame (1 installed, 0 refused or failed) before the connection closes.
 */
import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameType, smallFrame } from './frame';
import { errText, type Ctx, type PeerTransportOptions } from './context';
import { SnapshotChunkStream } from './snapshot-stream';

/** One inbound snapshot connection's frames, from its metadata to its ack. */
export class SnapshotReceive {
  private stream: SnapshotChunkStream | null = null;
  private metaSeen = false;

  /**
   * `from`: the sender's member ID (validated by the handshake); `violation(reason)` closes the connection for a
   * protocol error; `onSnapshot` is the host's handler (without one every snapshot is refused with ack 0).
   */
  constructor(
    private readonly sock: net.Socket,
    private readonly from: number,
    private readonly fromHex: string,
    private readonly ctx: Ctx,
    private readonly onSnapshot: PeerTransportOptions['onSnapshot'],
    private readonly violation: (reason: string) => void,
  ) {}

  /** One frame received on the connection. */
  frame(type: number, payload: Buffer): void {
    if (!this.metaSeen) {
      if (type !== FrameType.SnapMeta) return this.violation(`expected snapshot metadata, got frame type ${type}`);
      this.metaSeen = true;
      this.start(payload);
      return;
    }
    if (type === FrameType.SnapChunk) this.stream?.push(payload);
    else if (type === FrameType.SnapEnd) {
      this.sock.setTimeout(0); // installing may take long; the sender bounds the wait (SNAPSHOT_ACK_TIMEOUT_MS)
      this.stream?.end();
    } else this.violation(`unexpected frame type ${type} on snapshot connection`);
  }

  private start(meta: Buffer): void {
    const { sock, ctx, fromHex } = this;
    const label = { From: fromHex };
    const handler = this.onSnapshot;
    if (!handler) {
      ctx.log.warn({ 'remote-peer-id': fromHex }, 'refused snapshot: no onSnapshot handler');
      ctx.m.etcd_network_snapshot_receive_failures.inc(label);
      sock.end(smallFrame(FrameType.SnapAck, Uint8Array.of(0)));
      return;
    }
    const stream = new SnapshotChunkStream(sock);
    this.stream = stream;
    const started = performance.now();
    let settled = false;
    ctx.m.etcd_network_snapshot_receive_inflights_total.inc(label);
    const settle = (ok: boolean, err?: unknown): void => {
      if (settled) return;
      settled = true;
      stream.abandon();
      ctx.m.etcd_network_snapshot_receive_inflights_total.dec(label);
      if (ok) {
        ctx.m.etcd_network_snapshot_receive_success.inc(label);
        ctx.m.etcd_network_snapshot_receive_total_duration_seconds.observe(label, (performance.now() - started) / 1000);
        ctx.log.info({ 'remote-peer-id': fromHex }, 'received and installed snapshot');
      } else {
        ctx.m.etcd_network_snapshot_receive_failures.inc(label);
        ctx.log.warn({ 'remote-peer-id': fromHex, err: errText(err) }, 'failed to receive snapshot');
      }
      if (!sock.destroyed) sock.end(smallFrame(FrameType.SnapAck, Uint8Array.of(ok ? 1 : 0)));
    };
    let p: Promise<void>;
    try {
      p = handler(this.from, meta, stream);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(() => settle(true), (e) => settle(false, e));
    sock.once('close', () => stream.fail(new Error('snapshot connection closed before end of data')));
  }
}
