/**
 * Auth token providers (etcd auth: simple_token.go, jwt.go, store.go NewTokenProvider), selected by
 * `--auth-token simple` (default) or `--auth-token jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]`.
 *
 * Simple tokens are `<16 random letters>.<Raft index of the Authenticate entry>`. The letters are drawn by the
 * member that proposes Authenticate and travel in the entry, so every member registers the same token when the
 * entry commits: the token is valid cluster-wide (etcd assigns it in the Authenticate apply). A token is accepted
 * only once the member applied its index, and expires after --auth-token-ttl seconds without use on that member
 * (each use resets its clock, as etcd's simpleTokenTTLKeeper).
 *
 * JWT tokens carry {username, revision, exp} signed with the configured key (npm `jose`); any member holding the
 * public key verifies them. Like etcd, a JWT carries the auth revision it was issued under, so a later auth change
 * makes it stale (`revision of auth store is old`) and clients authenticate again.
 */
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as jose from 'jose';
import type { AuthInfo } from './store';

/** etcd simple token: 16 letters from a-zA-Z (store.go defaultSimpleTokenLength). */
export const SIMPLE_TOKEN_LENGTH = 16;
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** etcd default --auth-token-ttl, seconds. */
export const DEFAULT_AUTH_TOKEN_TTL_S = 300;
/** etcd jwt DefaultTTL: 5 minutes, in ms. */
export const DEFAULT_JWT_TTL_MS = 5 * 60 * 1000;
/** Most simple tokens a member keeps; at the limit the oldest is dropped (its holder re-authenticates). */
export const MAX_SIMPLE_TOKENS = 100_000;
/** Verified JWTs remembered so a token is not verified again on every request (bounded; cleared when full). */
export const JWT_CACHE_MAX = 10_000;

/** A token provider. `info` answers synchronously when it can (the hot path), else a promise. */
export interface TokenProvider {
  readonly kind: 'simple' | 'jwt';
  /** The random prefix a proposer puts in the Authenticate entry ('' for JWT). */
  genTokenPrefix(): string;
  /**
   * The identity behind `token`, or null when it is unknown, expired or badly signed (→ InvalidAuthToken).
   * `currentRevision` is the member's auth revision (simple tokens act at the current revision).
   */
  info(token: string, currentRevision: number): AuthInfo | null | Promise<AuthInfo | null>;
  /** Drops every token (auth disabled). */
  disable(): void;
  /** Drops the user's tokens (user deleted or password changed). */
  invalidateUser(username: string): void;
  /** Stops timers. */
  close(): void;
}

/** Draws the random letters of a simple token. */
export function genSimpleTokenPrefix(): string {
  let s = '';
  for (let i = 0; i < SIMPLE_TOKEN_LENGTH; i++) s += LETTERS[randomInt(LETTERS.length)];
  return s;
}

interface SimpleEntry { username: string; index: number; expiresAtMs: number }

/** etcd's simple tokens (see the module comment). */
export class SimpleTokenProvider implements TokenProvider {
  readonly kind = 'simple';
  private readonly tokens = new Map<string, SimpleEntry>();
  private readonly sweeper: NodeJS.Timeout;

  /**
   * @param ttlMs --auth-token-ttl in ms.
   * @param appliedIndex this member's applied index (a token is honoured once its entry is applied).
   * @param waitApplied resolves once the applied index reaches `index` (rejects on timeout).
   */
  constructor(
    private readonly ttlMs: number,
    private readonly appliedIndex: () => number,
    private readonly waitApplied: (index: number) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, Math.max(10, ttlMs / 4)));
    this.sweeper.unref();
  }

  genTokenPrefix(): string {
    return genSimpleTokenPrefix();
  }

  /** The token an Authenticate entry at `index` carrying `prefix` produces (same on every member). */
  static tokenOf(prefix: string, index: number): string {
    return `${prefix}.${index}`;
  }

  /** Registers the token of a committed Authenticate entry (called on every member, in log order). */
  register(prefix: string, index: number, username: string): void {
    if (prefix.length === 0) return;
    if (this.tokens.size >= MAX_SIMPLE_TOKENS) {
      const oldest = this.tokens.keys().next().value as string;
      this.tokens.delete(oldest);
    }
    this.tokens.set(SimpleTokenProvider.tokenOf(prefix, index), { username, index, expiresAtMs: this.now() + this.ttlMs });
  }

  info(token: string, currentRevision: number): AuthInfo | null | Promise<AuthInfo | null> {
    const dot = token.lastIndexOf('.');
    if (dot <= 0 || token.indexOf('.') !== dot) return null;
    const e = this.tokens.get(token);
    if (e === undefined) return null;
    const now = this.now();
    if (e.expiresAtMs <= now) {
      this.tokens.delete(token);
      return null;
    }
    e.expiresAtMs = now + this.ttlMs;
    const ai = { username: e.username, revision: currentRevision };
    if (this.appliedIndex() >= e.index) return ai;
    return this.waitApplied(e.index).then(() => (this.tokens.has(token) ? ai : null), () => null);
  }

  disable(): void {
    this.tokens.clear();
  }

  invalidateUser(username: string): void {
    for (const [t, e] of this.tokens) if (e.username === username) this.tokens.delete(t);
  }

  /** Tokens currently held (tests, metrics). */
  get size(): number {
    return this.tokens.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [t, e] of this.tokens) if (e.expiresAtMs <= now) this.tokens.delete(t);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/** Options of `--auth-token jwt,…` (etcd auth/options.go). */
export interface JwtOptions {
  signMethod: string;
  publicKeyPem?: string;
  privateKeyPem?: string;
  ttlMs: number;
}

/** Go's time.ParseDuration for the forms etcd users write (e.g. 5m, 30s, 1h30m, 500ms). Throws on anything else. */
export function parseGoDuration(s: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * units[m[2]!]!;
    matched = re.lastIndex;
  }
  if (s.length === 0 || matched !== s.length) throw new Error(`time: invalid duration "${s}"`);
  return total;
}

/** The parsed `--auth-token` flag. */
export type AuthTokenSpec = { kind: 'simple' } | { kind: 'jwt'; options: Record<string, string> };

/**
 * Parses `--auth-token` as etcd's decomposeOpts does: `simple`, or `jwt,key=value,…`.
 * Throws Error (etcd: "auth: invalid auth options") on an unknown type or a malformed option.
 */
export function parseAuthTokenFlag(flag: string): AuthTokenSpec {
  const parts = flag.split(',');
  const kind = parts[0];
  const options: Record<string, string> = {};
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error('auth: invalid auth options');
    options[p.slice(0, eq)] = p.slice(eq + 1);
  }
  if (kind === 'simple') return { kind: 'simple' };
  if (kind === 'jwt') return { kind: 'jwt', options };
  throw new Error('auth: invalid auth options');
}

/** Reads the JWT options' key files (etcd jwtOptions.Parse). Throws on unreadable files or bad values. */
export function loadJwtOptions(opts: Record<string, string>): JwtOptions {
  const ttl = opts['ttl'];
  return {
    signMethod: opts['sign-method'] ?? '',
    publicKeyPem: opts['pub-key'] ? fs.readFileSync(opts['pub-key'], 'utf8') : undefined,
    privateKeyPem: opts['priv-key'] ? fs.readFileSync(opts['priv-key'], 'utf8') : undefined,
    ttlMs: ttl ? parseGoDuration(ttl) : DEFAULT_JWT_TTL_MS,
  };
}

/** etcd's JWT tokens (see the module comment). Create with {@link JwtTokenProvider.create}. */
export class JwtTokenProvider implements TokenProvider {
  readonly kind = 'jwt';
  private readonly verified = new Map<string, { ai: AuthInfo; expMs: number }>();

  private constructor(
    private readonly alg: string,
    private readonly signKey: jose.KeyLike | Uint8Array | null,
    private readonly verifyKey: jose.KeyLike | Uint8Array,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Imports the keys: RSxxx / PSxxx (RSA) and ESxxx (ECDSA) take PEM keys, HSxxx the private key file's bytes as the shared
   * secret. Without a private key the provider only verifies (etcd's verify-only mode). Throws on a missing or
   * unsupported sign method or unusable keys.
   */
  static async create(o: JwtOptions, now: () => number = Date.now): Promise<JwtTokenProvider> {
    const alg = o.signMethod;
    if (alg === '') throw new Error('auth: invalid auth options: jwt sign-method is required');
    if (/^HS(256|384|512)$/.test(alg)) {
      if (!o.privateKeyPem) throw new Error('auth: invalid auth options: HMAC needs priv-key');
      const secret = new TextEncoder().encode(o.privateKeyPem);
      return new JwtTokenProvider(alg, secret, secret, o.ttlMs, now);
    }
    if (!/^(RS|PS|ES)(256|384|512)$/.test(alg)) throw new Error(`auth: invalid auth options: unsupported sign-method ${alg}`);
    const priv = o.privateKeyPem ? await jose.importPKCS8(o.privateKeyPem, alg) : null;
    let pub: jose.KeyLike;
    if (o.publicKeyPem) pub = await jose.importSPKI(o.publicKeyPem, alg);
    else if (priv !== null) pub = (await import('node:crypto')).createPublicKey(priv as never) as unknown as jose.KeyLike;
    else throw new Error('auth: invalid auth options: jwt needs pub-key or priv-key');
    return new JwtTokenProvider(alg, priv, pub, o.ttlMs, now);
  }

  genTokenPrefix(): string {
    return '';
  }

  /** etcd tokenJWT.assign: signs {username, revision, exp}. Throws when only a public key was given. */
  async assign(username: string, revision: number): Promise<string> {
    if (this.signKey === null) throw new Error('auth: token provider can only verify tokens');
    return new jose.SignJWT({ username, revision })
      .setProtectedHeader({ alg: this.alg, typ: 'JWT' })
      .setExpirationTime(Math.floor((this.now() + this.ttlMs) / 1000))
      .sign(this.signKey);
  }

  info(token: string): AuthInfo | null | Promise<AuthInfo | null> {
    const hit = this.verified.get(token);
    if (hit !== undefined) {
      if (hit.expMs > this.now()) return hit.ai;
      this.verified.delete(token);
      return null;
    }
    return jose
      .jwtVerify(token, this.verifyKey, { algorithms: [this.alg], currentDate: new Date(this.now()) })
      .then(({ payload }) => {
        const username = payload['username'];
        const revision = payload['revision'];
        if (typeof username !== 'string' || typeof revision !== 'number') return null;
        const ai = { username, revision };
        if (this.verified.size >= JWT_CACHE_MAX) this.verified.clear();
        this.verified.set(token, { ai, expMs: typeof payload.exp === 'number' ? payload.exp * 1000 : Number.MAX_SAFE_INTEGER });
        return ai;
      })
      .catch(() => null);
  }

  disable(): void {}
  invalidateUser(): void {}
  close(): void {}
}
