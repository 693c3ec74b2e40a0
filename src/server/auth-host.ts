/**
 * The main thread's side of etcd's auth (etcd auth.AuthStore as EtcdServer uses it, v3_server.go Authenticate /
 * User* / Role*): a read-only copy of the auth store for admission checks, the token provider, password hashing
 * and checking (bcrypt on libuv's pool) and the proposals of auth changes through Raft.
 *
 * The copy is reloaded from LMDB whenever the apply worker publishes a new auth sequence number
 * (ApplyWord.AuthSeq), after the batch that changed it was committed; tokens of deleted users and users whose
 * password changed are dropped then, and every simple token when auth is disabled (etcd invalidateUser/disable).
 */
import { EtcdError, Errors } from '../errors';
import { EntryKind, type Propose } from '../wire/entry';
import { ApplyWord } from '../apply/apply-status';
import { authOpTypes, encodeAuthMgmt } from '../wire/auth-mgmt';
import { AuthOp, needsAdmin } from '../auth/ops';
import { AuthStore, NO_AUTH, type AuthInfo, type AuthRecord } from '../auth/store';
import { rangeError, txnError, deleteError, putError, type KeyRange, type TxnLike, type DeleteLike, type PutLike } from '../auth/request-perms';
import { checkPassword, hashPassword, DEFAULT_BCRYPT_COST } from '../auth/password';
import { JwtTokenProvider, SimpleTokenProvider, loadJwtOptions, parseAuthTokenFlag, type TokenProvider } from '../auth/tokens';
import type { Logger } from '../log';
import type { MemberEventSource } from '../member-events';

/** What the auth host needs of the server. */
export interface AuthServerPort {
  propose: Propose;
  /** Resolves once a ReadIndex round confirmed and applied (etcd linearizableReadNotify). */
  linearizableWait(): Promise<void>;
  /** Resolves once the applied index reaches `index` (rejects on the request timeout). */
  waitApplied(index: number): Promise<void>;
  appliedIndex(): number;
  applyWord(w: ApplyWord): number;
  authRecord(): unknown;
  readonly events: MemberEventSource;
}

/** Settings (etcd flags --auth-token, --auth-token-ttl, --bcrypt-cost, --client-cert-auth). */
export interface AuthHostOptions {
  authToken: string;
  authTokenTtlSeconds: number;
  bcryptCost?: number;
  clientCertAuth: boolean;
  logger: Logger;
}

/** Authenticate retries when the auth store changed between the password check and the apply (etcd loops). */
const MAX_AUTHENTICATE_ATTEMPTS = 5;

/** The main-thread auth host (see the module comment). Create with {@link AuthHost.create}. */
export class AuthHost {
  private store: AuthStore;
  private seenSeq = -1;
  private seenRevision = -1;
  private readonly onApplied = (): void => this.refresh();

  private constructor(private readonly server: AuthServerPort, readonly tokens: TokenProvider, private readonly opts: AuthHostOptions) {
    this.store = new AuthStore(server.authRecord() as AuthRecord | undefined);
    this.seenSeq = server.applyWord(ApplyWord.AuthSeq);
    this.seenRevision = server.applyWord(ApplyWord.AuthRevision);
    server.events.on('applied', this.onApplied);
  }

  /** Builds the token provider from --auth-token and loads the store. Throws on bad --auth-token options. */
  static async create(server: AuthServerPort, opts: AuthHostOptions): Promise<AuthHost> {
    const spec = parseAuthTokenFlag(opts.authToken);
    const tokens: TokenProvider =
      spec.kind === 'simple'
        ? new SimpleTokenProvider(opts.authTokenTtlSeconds * 1000, () => server.appliedIndex(), (i) => server.waitApplied(i))
        : await JwtTokenProvider.create(loadJwtOptions(spec.options));
    return new AuthHost(server, tokens, opts);
  }

  /** True while auth is enabled (as this member applied it). */
  get enabled(): boolean {
    return this.store.enabled;
  }

  /** The auth revision this member applied. */
  revision(): number {
    return this.store.revision;
  }

  /** The read-only store copy (admission checks). */
  get authStore(): AuthStore {
    return this.store;
  }

  /** Re-reads the auth record when the apply worker changed it. */
  refresh(): void {
    const seq = this.server.applyWord(ApplyWord.AuthSeq);
    const rev = this.server.applyWord(ApplyWord.AuthRevision);
    if (seq === this.seenSeq && rev === this.seenRevision) return;
    this.seenSeq = seq;
    this.seenRevision = rev;
    const old = this.store;
    this.store = new AuthStore(this.server.authRecord() as AuthRecord | undefined);
    if (!this.store.enabled && old.enabled) this.tokens.disable();
    for (const u of old.record().users) {
      const now = this.store.user(u.name);
      if (now === undefined || now.password !== u.password) this.tokens.invalidateUser(u.name);
    }
  }

  /** A committed Authenticate entry: every member registers its simple token (etcd tokenSimple.assign). */
  onAuthenticateCommitted(index: number, payload: Uint8Array): void {
    if (!(this.tokens instanceof SimpleTokenProvider)) return;
    try {
      const r = authOpTypes(AuthOp.Authenticate).req.decode(payload.subarray(1)) as unknown as { name?: string; simpleToken?: string };
      this.tokens.register(r.simpleToken ?? '', index, r.name ?? '');
    } catch {
      // a corrupt entry: the apply worker reports it
    }
  }

  /**
   * etcd AuthInfoFromCtx: the identity of a call. A token is checked whether or not auth is enabled (an unknown
   * one fails InvalidAuthToken); without one, with --client-cert-auth, the verified client certificate's CN acts
   * as the user (etcd AuthInfoFromTLS), also when it is '' (a certificate without CN: etcd's identity with an empty
   * name, refused by KV checks with PermissionDenied and by admin checks with UserEmpty). null: no credentials.
   */
  identify(token: string | undefined, certCommonName: string | null): AuthInfo | null | Promise<AuthInfo | null> {
    if (token !== undefined) {
      const r = this.tokens.info(token, this.store.revision);
      if (r === null) throw new EtcdError(Errors.InvalidAuthToken);
      if (r instanceof Promise) {
        return r.then((ai) => {
          if (ai === null) throw new EtcdError(Errors.InvalidAuthToken);
          return ai;
        });
      }
      return r;
    }
    if (this.opts.clientCertAuth && certCommonName !== null) return { username: certCommonName, revision: this.store.revision };
    return null;
  }

  /** etcd IsRangePermitted at admission (Range, Watch). */
  rangeError(ai: AuthInfo | null, r: KeyRange): EtcdError | null {
    return this.store.enabled ? rangeError(this.store, ai ?? NO_AUTH, r) : null;
  }

  /** Admission check of a write (the apply worker checks again, with lease keys). */
  writeError(kind: EntryKind, ai: AuthInfo | null, req: unknown): EtcdError | null {
    if (!this.store.enabled) return null;
    const a = ai ?? NO_AUTH;
    switch (kind) {
      case EntryKind.Put: return putError(this.store, a, req as PutLike);
      case EntryKind.DeleteRange: return deleteError(this.store, a, req as DeleteLike);
      case EntryKind.Txn: return txnError(this.store, a, req as TxnLike);
      default: return null;
    }
  }

  /** etcd doSerialize's last step: a read admitted under an auth revision that changed meanwhile is refused. */
  staleError(ai: AuthInfo | null): EtcdError | null {
    return ai !== null && ai.revision !== 0 && ai.revision !== this.store.revision ? new EtcdError(Errors.AuthOldRevision) : null;
  }

  /** etcd IsAdminPermitted (maintenance and membership RPCs). */
  adminError(ai: AuthInfo | null): EtcdError | null {
    return this.store.adminError(ai);
  }

  /**
   * etcd api: Auth.Authenticate (v3_server.go): a linearizable read, the password checked here (bcrypt off the
   * reactor), then an Authenticate entry with a fresh token prefix through Raft; retried when the auth revision
   * moved meanwhile. Resolves with the encoded AuthenticateResponse. Rejects AuthNotEnabled, NoPasswordUser, AuthFailed, Raft errors.
   */
  async authenticate(name: string, password: string): Promise<Uint8Array> {
    await this.server.linearizableWait();
    for (let attempt = 0; ; attempt++) {
      const store = this.store;
      if (!store.enabled) throw new EtcdError(Errors.AuthNotEnabled);
      const u = store.user(name);
      // etcd checks the no-password option before any password, whatever was given.
      if (u?.noPassword) throw new EtcdError(Errors.NoPasswordUser);
      if (u === undefined || !(await checkPassword(password, u.password))) {
        this.opts.logger.warn({ user: name }, 'invalid authentication was requested');
        throw new EtcdError(Errors.AuthFailed);
      }
      const checkedRevision = store.revision;
      const req = authOpTypes(AuthOp.Authenticate).req.encode({ name, simpleToken: this.tokens.genTokenPrefix() }).finish();
      let res = await this.server.propose(EntryKind.AuthMgmt, encodeAuthMgmt(AuthOp.Authenticate, req));
      this.refresh();
      if (checkedRevision !== this.store.revision && attempt + 1 < MAX_AUTHENTICATE_ATTEMPTS) {
        this.opts.logger.info('revision when password checked became stale; retrying');
        continue;
      }
      if (this.tokens instanceof JwtTokenProvider) {
        const type = authOpTypes(AuthOp.Authenticate).res;
        const decoded = type.decode(res) as unknown as { header: unknown };
        res = type.encode({ header: decoded.header, token: await this.tokens.assign(name, this.store.revision) }).finish();
      }
      return res;
    }
  }

  /**
   * Every other Auth RPC (etcd api: Auth.AuthEnable … RoleRevokePermission): `request` is the client's bytes.
   * Admin-only ops are refused at admission already when the caller is not root; UserAdd / UserChangePassword
   * get their password replaced by its bcrypt hash before proposing. Resolves with the encoded response.
   */
  async manage(op: AuthOp, request: Uint8Array, ai: AuthInfo | null): Promise<Uint8Array> {
    if (needsAdmin(op)) {
      const e = this.store.adminError(ai);
      if (e !== null) throw e;
    }
    let bytes = request;
    if (op === AuthOp.UserAdd || op === AuthOp.UserChangePassword) {
      const type = authOpTypes(op).req;
      const r = type.decode(request) as unknown as { name?: string; password?: string; options?: { noPassword?: boolean } };
      // etcd hashes at apply; empty names fail there before any hash, so do not spend one on them.
      const cost = this.opts.bcryptCost !== undefined && this.opts.bcryptCost >= 4 && this.opts.bcryptCost <= 31 ? this.opts.bcryptCost : DEFAULT_BCRYPT_COST;
      const hashed = op === AuthOp.UserAdd && ((r.name ?? '') === '' || r.options?.noPassword) ? '' : await hashPassword(r.password ?? '', cost);
      bytes = type.encode({ ...r, password: hashed }).finish();
    }
    return this.server.propose(EntryKind.AuthMgmt, encodeAuthMgmt(op, bytes), undefined, ai ?? NO_AUTH);
  }

  /** Stops the token provider's timers and the reload hook. */
  close(): void {
    this.server.events.off('applied', this.onApplied);
    this.tokens.close();
  }
}
