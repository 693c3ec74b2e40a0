/**
 * A TCP proxy in front of every member's peer port, with partitions the test controls.
 *
 * Each member advertises a peer URL on its proxy's port (that URL goes into the shared `--initial-cluster`, so
 * member IDs stay the same whatever the proxy does) and listens on a private port the proxy forwards to. Each
 * proxied connection knows its listener (the proxy's member) and learns its dialer from the first bytes the dialer
 * sends (`Identify`): etcetera's 32-byte peer handshake names the sender (src/transport/frame.ts), etcd's rafthttp
 * requests carry an `X-Server-From` header. Bytes dialer → listener are "from dialer to listener", bytes back are
 * "from listener to dialer", whichever side carries the Raft messages (etcetera streams dialer → listener; etcd's
 * stream GETs carry them in the response).
 *
 * A block A↛B stalls every byte from A to B on every connection between them: the source socket is paused (and
 * what was already read is held), so the bytes wait in the kernel and TCP backpressure reaches A like a black-holed
 * link; after the heal they arrive late, in order, never altered, followed by A's close if A closed meanwhile — what
 * TCP's retransmissions deliver once a network heals. A one-way partition blocks one direction only. A source that
 * fails (reset) while bytes it sent are held by the proxy resets both sides: nothing is delivered after a gap.
 * `reset()` cuts connections at once (a connection reset by the network).
 *
 * Connections whose dialer cannot be identified (etcd's version and probing requests) count as from an unknown
 * member: stalled both ways while their listener has any block.
 */
import * as net from 'node:net';

/** Member ID as sent on the wire (u64). */
export type MemberId = bigint;

/**
 * Finds the dialer's member ID in the first bytes of a connection: 'more' = need more bytes, null = unknown
 * (no ID in this protocol message, or not the expected protocol).
 */
export type Identify = (head: Buffer) => MemberId | null | 'more';

/** Bytes read while identifying before giving up (an HTTP request header is far smaller). */
const IDENTIFY_MAX_BYTES = 64 * 1024;

/** etcetera's peer handshake: magic "ETCR" (u32 LE), then the sender's member ID as u64 LE at bytes 16..23 (frame.ts). */
export const identifyEtcetera: Identify = (head) => {
  if (head.length < 32) return 'more';
  if (head.readUInt32LE(0) !== 0x52435445) return null;
  const from = head.readBigUInt64LE(16);
  return from === 0n ? null : from;
};

/** etcd's rafthttp: every request of a member to a peer carries `X-Server-From: <member ID in hex>`. */
export const identifyEtcd: Identify = (head) => {
  const end = head.indexOf('\r\n\r\n');
  if (end < 0) return head.length < IDENTIFY_MAX_BYTES ? 'more' : null;
  const m = /\r\nx-server-from:\s*([0-9a-f]+)\s*\r\n/i.exec(head.subarray(0, end + 2).toString('latin1'));
  return m ? BigInt(`0x${m[1]}`) : null;
};

/** One direction of a proxied connection. */
class Pipe {
  /** Chunks read from `src` but not yet written to `dst` (held while blocked). */
  held: Buffer[] = [];
  heldBytes = 0;
  private waitingDrain = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly blocked: () => boolean,
    private readonly onBytes: (n: number) => void,
  ) {}

  /** Data from `src`. */
  push(chunk: Buffer): void {
    if (this.held.length > 0 || this.blocked()) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      this.src.pause();
      return;
    }
    this.write(chunk);
  }

  private write(chunk: Buffer): void {
    this.onBytes(chunk.length);
    if (!this.dst.write(chunk) && !this.waitingDrain) {
      this.waitingDrain = true;
      this.src.pause();
      this.dst.once('drain', () => { this.waitingDrain = false; this.update(); });
    }
  }

  /** Re-evaluates the block: delivers held bytes and resumes the source once unblocked. */
  update(): void {
    if (this.blocked()) { this.src.pause(); return; }
    while (this.held.length > 0 && !this.waitingDrain) {
      const c = this.held.shift()!;
      this.heldBytes -= c.length;
      this.write(c);
    }
    if (this.held.length === 0 && !this.waitingDrain && !this.src.destroyed) this.src.resume();
  }
}

/** One accepted connection: dialer socket ↔ listener socket. */
class ProxiedConn {
  from: MemberId | null | undefined = undefined; // undefined while identifying
  private head: Buffer[] = [];
  private headBytes = 0;
  readonly toListener: Pipe;
  readonly toDialer: Pipe;
  private closed = false;

  constructor(readonly proxy: PeerProxy, readonly down: net.Socket, readonly up: net.Socket) {
    const net_ = proxy.network;
    this.toListener = new Pipe(down, up, () => this.from === undefined || net_.blocks(this.from, proxy.memberId), (n) => { proxy.bytes += n; });
    this.toDialer = new Pipe(up, down, () => this.from === undefined || net_.blocks(proxy.memberId, this.from), (n) => { proxy.bytes += n; });
    down.on('data', (c: Buffer) => (this.from === undefined ? this.identify(c) : this.toListener.push(c)));
    up.on('data', (c: Buffer) => this.toDialer.push(c));
    down.on('end', () => this.halfClose(this.toListener, up));
    up.on('end', () => this.halfClose(this.toDialer, down));
    for (const s of [down, up]) {
      s.on('error', () => this.destroy());
      s.on('close', () => this.destroy());
    }
  }

  private identify(chunk: Buffer): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const buf = Buffer.concat(this.head);
    const id = this.proxy.identify(buf);
    if (id === 'more' && this.headBytes < IDENTIFY_MAX_BYTES) return;
    this.from = id === 'more' ? null : id;
    if (this.from === null) this.proxy.unidentified++;
    this.head = [];
    this.toListener.held.push(buf);
    this.toListener.heldBytes += buf.length;
    this.update();
  }

  /** The source of `pipe` sent FIN: pass it on unless bytes are held (then reset: the held bytes are lost). */
  private halfClose(pipe: Pipe, dst: net.Socket): void {
    if (pipe.held.length > 0 || this.from === undefined) this.destroy();
    else dst.end();
  }

  /** Between members `a` and `b` (either dialing)? */
  joins(a: MemberId, b: MemberId): boolean {
    const l = this.proxy.memberId;
    return (l === a && this.from === b) || (l === b && this.from === a) || (this.from === null && (l === a || l === b));
  }

  update(): void {
    if (this.closed || this.from === undefined) return;
    this.toListener.update();
    this.toDialer.update();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.down.destroy();
    this.up.destroy();
    this.proxy.conns.delete(this);
  }

  get heldBytes(): number { return this.toListener.heldBytes + this.toDialer.heldBytes; }
}

/** The proxy in front of one member's peer port. */
export class PeerProxy {
  readonly conns = new Set<ProxiedConn>();
  private server: net.Server | null = null;
  /** Bytes forwarded, both directions. */
  bytes = 0;
  /** Connections accepted. */
  accepted = 0;
  /** Connections whose dialer was not identified. */
  unidentified = 0;

  constructor(
    readonly network: Network,
    /** The member behind this proxy (learned with {@link Network.setMemberIds}; 0n until then). */
    public memberId: MemberId,
    readonly listenPort: number,
    readonly targetPort: number,
    readonly identify: Identify,
  ) {}

  async start(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: false }, (down) => {
      this.accepted++;
      down.setNoDelay(true);
      const up = net.connect({ host: '127.0.0.1', port: this.targetPort });
      up.setNoDelay(true);
      const c = new ProxiedConn(this, down, up);
      this.conns.add(c);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
  }

  async close(): Promise<void> {
    for (const c of [...this.conns]) c.destroy();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** Every member's proxy and the current blocks. Member names are the test's; IDs are the wire's. */
export class Network {
  readonly proxies = new Map<string, PeerProxy>();
  private readonly nameOf = new Map<MemberId, string>();
  /** Blocked directions as "from>to" member names. */
  private readonly blocked = new Set<string>();

  constructor(private readonly identify: Identify) {}

  /** Starts the proxy for member `name`: `listenPort` (advertised) forwards to `targetPort` (the member's own). */
  async add(name: string, listenPort: number, targetPort: number): Promise<void> {
    const p = new PeerProxy(this, 0n, listenPort, targetPort, this.identify);
    await p.start();
    this.proxies.set(name, p);
  }

  /** Member IDs (from Cluster.MemberList) by member name; needed before any block can apply. */
  setMemberIds(ids: Map<string, MemberId>): void {
    for (const [name, id] of ids) {
      this.nameOf.set(id, name);
      const p = this.proxies.get(name);
      if (p) p.memberId = id;
    }
  }

  /** True if bytes from `from` to `to` are stalled now; null = an unidentified dialer (stalled while the other end has any block). */
  blocks(from: MemberId | null, to: MemberId | null): boolean {
    if (this.blocked.size === 0) return false;
    if (from === null || to === null) {
      const known = this.nameOf.get((from ?? to)!);
      for (const b of this.blocked) { const [x, y] = b.split('>'); if (x === known || y === known) return true; }
      return false;
    }
    return this.blocked.has(`${this.nameOf.get(from)}>${this.nameOf.get(to)}`);
  }

  /** Adds one-way blocks `from ↛ to` for every pair given. */
  block(pairs: [string, string][]): void {
    for (const [a, b] of pairs) this.blocked.add(`${a}>${b}`);
    this.update();
  }

  /** Isolates `side` from every other member, both ways. */
  isolate(side: string[]): void {
    const others = [...this.proxies.keys()].filter((n) => !side.includes(n));
    const pairs: [string, string][] = [];
    for (const a of side) for (const b of others) pairs.push([a, b], [b, a]);
    this.block(pairs);
  }

  /** Removes every block; held bytes flow again. */
  heal(): void {
    this.blocked.clear();
    this.update();
  }

  /** Current blocks, e.g. ["n1>n2"]. */
  describe(): string[] { return [...this.blocked].sort(); }

  /** Resets every connection between members `a` and `b` (both directions, any dialer). Returns how many. */
  reset(a: string, b: string): number {
    const ia = this.idOf(a);
    const ib = this.idOf(b);
    let n = 0;
    for (const p of this.proxies.values()) {
      for (const c of [...p.conns]) if (c.joins(ia, ib)) { c.destroy(); n++; }
    }
    return n;
  }

  /** Proxy totals: connections accepted, how many of them unidentified, bytes forwarded. */
  stats(): { connections: number; unidentified: number; bytes: number } {
    let connections = 0, unidentified = 0, bytes = 0;
    for (const p of this.proxies.values()) { connections += p.accepted; unidentified += p.unidentified; bytes += p.bytes; }
    return { connections, unidentified, bytes };
  }

  /** Bytes currently held by blocks, over all connections. */
  heldBytes(): number {
    let n = 0;
    for (const p of this.proxies.values()) for (const c of p.conns) n += c.heldBytes;
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }

  private idOf(name: string): MemberId {
    const p = this.proxies.get(name);
    if (!p) throw new Error(`no proxy for ${name}`);
    return p.memberId;
  }

  private update(): void {
    for (const p of this.proxies.values()) for (const c of p.conns) c.update();
  }
}
