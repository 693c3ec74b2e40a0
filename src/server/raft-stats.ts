/**
 * etcd 3.4's v2 statistics of the Raft traffic (etcd api: `/v2/stats/self`, `/v2/stats/leader`; etcd keeps them as
 * ServerStats and LeaderStats): this member's append counts and rates, who it follows since when, and — while it
 * leads — each follower's answer latency and counts. Fed by the peer transport (src/server/peers.ts) with every batch
 * of Raft messages sent and received, on the main thread; reading them costs nothing on the request path.
 *
 * What is measured here (etcd measures in its HTTP transport, so values differ, shapes do not): a follower's latency is
 * the time from the first MsgApp/MsgHeartbeat sent to it that is not answered yet to its next MsgAppResp or
 * MsgHeartbeatResp, in ms; `success` counts those answers, `fail` the transport's unreachable reports. Rates are per
 * second over the last {@link RATE_WINDOW_MS} (at most {@link RATE_SAMPLES} samples kept); a rate of 0 is left out
 * of the JSON as etcd leaves it out.
 */
import { MessageType, type Message } from '../raft';
import { goDuration } from '../go-duration';
import { rfc3339Nano } from '../v2store/store';

/** Samples kept for a rate (etcd's stats queue holds 200). */
export const RATE_SAMPLES = 200;
/** Rates are taken over this window, ms. */
export const RATE_WINDOW_MS = 1000;

/** etcd starts a follower's minimum latency at 2^63 (the largest Go duration) as a float. */
const NO_MINIMUM_MS = 2 ** 63;

const hex = (id: number): string => id.toString(16);

/** Wire bytes of a message, near enough for a bandwidth rate: the entries' payloads plus a fixed header each. */
function approxBytes(m: Message): number {
  let n = 32;
  for (const e of m.entries) n += e.data.byteLength + 16;
  return n;
}

/** A bounded window of (time, bytes) samples and its rates. */
class RateWindow {
  private readonly at = new Float64Array(RATE_SAMPLES);
  private readonly bytes = new Float64Array(RATE_SAMPLES);
  private next = 0;
  private count = 0;

  add(nowMs: number, size: number): void {
    this.at[this.next] = nowMs;
    this.bytes[this.next] = size;
    this.next = (this.next + 1) % RATE_SAMPLES;
    if (this.count < RATE_SAMPLES) this.count++;
  }

  /** Messages and bytes per second over the last window (or over the span of the samples, when all are inside it). */
  rates(nowMs: number): { pkg: number; bandwidth: number } {
    let n = 0;
    let b = 0;
    let oldest = nowMs;
    for (let i = 0; i < this.count; i++) {
      const j = (this.next - 1 - i + RATE_SAMPLES) % RATE_SAMPLES;
      const t = this.at[j]!;
      if (nowMs - t > RATE_WINDOW_MS) break;
      n++;
      b += this.bytes[j]!;
      oldest = t;
    }
    if (n === 0) return { pkg: 0, bandwidth: 0 };
    const full = n === RATE_SAMPLES;
    const spanS = (full ? Math.max(nowMs - oldest, 1) : RATE_WINDOW_MS) / 1000;
    return { pkg: n / spanS, bandwidth: b / spanS };
  }
}

/** One follower as the leader sees it (etcd: FollowerStats). */
class FollowerStats {
  current = 0;
  sum = 0;
  sumSquares = 0;
  minimum = NO_MINIMUM_MS;
  maximum = 0;
  success = 0;
  fail = 0;
  /** When the oldest unanswered append or heartbeat went out (performance.now() ms), or null. */
  waitingSince: number | null = null;

  answered(nowMs: number): void {
    if (this.waitingSince === null) return;
    const ms = nowMs - this.waitingSince;
    this.waitingSince = null;
    this.success++;
    this.current = ms;
    this.sum += ms;
    this.sumSquares += ms * ms;
    if (ms < this.minimum) this.minimum = ms;
    if (ms > this.maximum) this.maximum = ms;
  }

  json(): unknown {
    const n = this.success;
    const average = n === 0 ? 0 : this.sum / n;
    const variance = n === 0 ? 0 : Math.max(0, this.sumSquares / n - average * average);
    return {
      latency: { current: this.current, average, standardDeviation: Math.sqrt(variance), minimum: this.minimum, maximum: this.maximum },
      counts: { fail: this.fail, success: this.success },
    };
  }
}

/** What the stats need of the member. */
export interface RaftStatsHost {
  name(): string;
  localId(): number;
  /** The other members' IDs (every one is listed as a follower while this member leads). */
  peerIds(): number[];
  /** The known leader (0: none) and whether this member is it. */
  leader(): { lead: number; isLeader: boolean };
}

/** The member's Raft traffic statistics (etcd: ServerStats + LeaderStats). */
export class RaftStats {
  private readonly startMs = Date.now();
  private leaderId = 0;
  private leaderSinceMs = Date.now();
  private recvAppends = 0;
  private sendAppends = 0;
  private readonly recvRate = new RateWindow();
  private readonly sendRate = new RateWindow();
  private readonly followers = new Map<number, FollowerStats>();

  constructor(private readonly host: RaftStatsHost) {}

  private follower(id: number): FollowerStats {
    let f = this.followers.get(id);
    if (f === undefined) {
      f = new FollowerStats();
      this.followers.set(id, f);
    }
    return f;
  }

  /** The known leader changed (etcd resets leaderInfo's start time then). */
  leaderChanged(lead: number): void {
    if (lead === this.leaderId) return;
    this.leaderId = lead;
    this.leaderSinceMs = Date.now();
  }

  /** A batch of messages handed to the transport. */
  sent(msgs: readonly Message[]): void {
    const wall = Date.now();
    let mono = -1;
    for (const m of msgs) {
      if (m.type === MessageType.MsgApp) {
        this.sendAppends++;
        this.sendRate.add(wall, approxBytes(m));
      }
      if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat) {
        const f = this.follower(m.to);
        if (f.waitingSince === null) f.waitingSince = mono < 0 ? (mono = performance.now()) : mono;
      }
    }
  }

  /** A batch of messages received from peers. */
  received(msgs: readonly Message[]): void {
    let mono = -1;
    for (const m of msgs) {
      if (m.type === MessageType.MsgApp) {
        this.recvAppends++;
        this.recvRate.add(Date.now(), approxBytes(m));
      } else if (m.type === MessageType.MsgAppResp || m.type === MessageType.MsgHeartbeatResp) {
        const f = this.followers.get(m.from);
        if (f !== undefined) f.answered(mono < 0 ? (mono = performance.now()) : mono);
      }
    }
  }

  /** The transport could not deliver to `id`. */
  unreachable(id: number): void {
    const f = this.follower(id);
    f.fail++;
    f.waitingSince = null;
  }

  /** etcd's `/v2/stats/self` JSON (fields in etcd's order). */
  selfJson(): string {
    const now = Date.now();
    const { lead, isLeader } = this.host.leader();
    this.leaderChanged(lead);
    const out: Record<string, unknown> = {
      name: this.host.name(),
      id: hex(this.host.localId()),
      state: isLeader ? 'StateLeader' : 'StateFollower',
      startTime: rfc3339Nano(this.startMs),
      leaderInfo: {
        leader: lead === 0 ? '' : hex(lead),
        uptime: goDuration((now - this.leaderSinceMs) * 1e6),
        startTime: rfc3339Nano(this.leaderSinceMs),
      },
      recvAppendRequestCnt: this.recvAppends,
    };
    const r = this.recvRate.rates(now);
    if (r.pkg !== 0) out.recvPkgRate = r.pkg;
    if (r.bandwidth !== 0) out.recvBandwidthRate = r.bandwidth;
    out.sendAppendRequestCnt = this.sendAppends;
    const s = this.sendRate.rates(now);
    if (s.pkg !== 0) out.sendPkgRate = s.pkg;
    if (s.bandwidth !== 0) out.sendBandwidthRate = s.bandwidth;
    return JSON.stringify(out);
  }

  /** etcd's `/v2/stats/leader` JSON, or null when this member is not the leader (etcd: 403 "not current leader"). */
  leaderJson(): string | null {
    if (!this.host.leader().isLeader) return null;
    const followers: Record<string, unknown> = {};
    const ids = this.host.peerIds().map((id) => [hex(id), id] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [h, id] of ids) followers[h] = this.follower(id).json();
    return JSON.stringify({ leader: hex(this.host.localId()), followers });
  }
}
