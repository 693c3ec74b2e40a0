/**
 * Every coded error etcetera returns to a client, in one place: the gRPC status code and the exact
 * message etcd 3.4 sends (etcd api: v3rpc/rpctypes). The numeric `id` is what crosses thread boundaries
 * (apply worker → main thread results ring); 0 means success.
 */

/** One coded error: a stable numeric id, the gRPC status code and etcd's exact message. */
export interface ErrorSpec { readonly id: number; readonly grpcCode: number; readonly message: string }

export const Errors = {
  EmptyKey: { id: 1, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: key is not provided" },
  KeyNotFound: { id: 2, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: key not found" },
  ValueProvided: { id: 3, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: value is provided" },
  LeaseProvided: { id: 4, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: lease is provided" },
  TooManyOps: { id: 5, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: too many operations in txn request" },
  DuplicateKey: { id: 6, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: duplicate key given in txn request" },
  Compacted: { id: 7, grpcCode: 11 /* OutOfRange */, message: "etcdserver: mvcc: required revision has been compacted" },
  FutureRev: { id: 8, grpcCode: 11 /* OutOfRange */, message: "etcdserver: mvcc: required revision is a future revision" },
  NoSpace: { id: 9, grpcCode: 8 /* ResourceExhausted */, message: "etcdserver: mvcc: database space exceeded" },
  LeaseNotFound: { id: 10, grpcCode: 5 /* NotFound */, message: "etcdserver: requested lease not found" },
  LeaseExist: { id: 11, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: lease already exists" },
  LeaseTTLTooLarge: { id: 12, grpcCode: 11 /* OutOfRange */, message: "etcdserver: too large lease TTL" },
  WatchCanceled: { id: 13, grpcCode: 1 /* Canceled */, message: "etcdserver: watch canceled" },
  MemberExist: { id: 14, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: member ID already exist" },
  PeerURLExist: { id: 15, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: Peer URLs already exists" },
  MemberNotEnoughStarted: { id: 16, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: re-configuration failed due to not enough started members" },
  MemberBadURLs: { id: 17, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: given member URLs are invalid" },
  MemberNotFound: { id: 18, grpcCode: 5 /* NotFound */, message: "etcdserver: member not found" },
  MemberNotLearner: { id: 19, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: can only promote a learner member" },
  LearnerNotReady: { id: 20, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: can only promote a learner member which is in sync with leader" },
  TooManyLearners: { id: 21, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: too many learner members in cluster" },
  RequestTooLarge: { id: 22, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: request is too large" },
  RequestTooManyRequests: { id: 23, grpcCode: 8 /* ResourceExhausted */, message: "etcdserver: too many requests" },
  RootUserNotExist: { id: 24, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: root user does not exist" },
  RootRoleNotExist: { id: 25, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: root user does not have root role" },
  UserAlreadyExist: { id: 26, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: user name already exists" },
  UserEmpty: { id: 27, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: user name is empty" },
  UserNotFound: { id: 28, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: user name not found" },
  RoleAlreadyExist: { id: 29, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: role name already exists" },
  RoleNotFound: { id: 30, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: role name not found" },
  RoleEmpty: { id: 31, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: role name is empty" },
  AuthFailed: { id: 32, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: authentication failed, invalid user ID or password" },
  PermissionDenied: { id: 33, grpcCode: 7 /* PermissionDenied */, message: "etcdserver: permission denied" },
  RoleNotGranted: { id: 34, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: role is not granted to the user" },
  PermissionNotGranted: { id: 35, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: permission is not granted to the role" },
  AuthNotEnabled: { id: 36, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: authentication is not enabled" },
  InvalidAuthToken: { id: 37, grpcCode: 16 /* Unauthenticated */, message: "etcdserver: invalid auth token" },
  InvalidAuthMgmt: { id: 38, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: invalid auth management" },
  AuthOldRevision: { id: 39, grpcCode: 3 /* InvalidArgument */, message: "etcdserver: revision of auth store is old" },
  NoLeader: { id: 40, grpcCode: 14 /* Unavailable */, message: "etcdserver: no leader" },
  NotLeader: { id: 41, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: not leader" },
  LeaderChanged: { id: 42, grpcCode: 14 /* Unavailable */, message: "etcdserver: leader changed" },
  NotCapable: { id: 43, grpcCode: 14 /* Unavailable */, message: "etcdserver: not capable" },
  Stopped: { id: 44, grpcCode: 14 /* Unavailable */, message: "etcdserver: server stopped" },
  Timeout: { id: 45, grpcCode: 14 /* Unavailable */, message: "etcdserver: request timed out" },
  TimeoutDueToLeaderFail: { id: 46, grpcCode: 14 /* Unavailable */, message: "etcdserver: request timed out, possibly due to previous leader failure" },
  TimeoutDueToConnectionLost: { id: 47, grpcCode: 14 /* Unavailable */, message: "etcdserver: request timed out, possibly due to connection lost" },
  TimeoutWaitAppliedIndex: { id: 48, grpcCode: 14 /* Unavailable */, message: "etcdserver: request timed out, waiting for the applied index took too long" },
  Unhealthy: { id: 49, grpcCode: 14 /* Unavailable */, message: "etcdserver: unhealthy cluster" },
  Corrupt: { id: 50, grpcCode: 15 /* DataLoss */, message: "etcdserver: corrupt cluster" },
  NotSupportedForLearner: { id: 51, grpcCode: 14 /* Unavailable */, message: "etcdserver: rpc not supported for learner" },
  BadLeaderTransferee: { id: 52, grpcCode: 9 /* FailedPrecondition */, message: "etcdserver: bad leader transferee" },
  // etcd has no rpctypes entry for this one, so togRPCError sends it as Unknown with the server error's text.
  TimeoutLeaderTransfer: { id: 53, grpcCode: 2 /* Unknown */, message: "etcdserver: request timed out, leader transfer took too long" },
  // raft.ErrProposalDropped (a leader transfer in progress, or the uncommitted-size limit): no rpctypes entry either.
  ProposalDropped: { id: 54, grpcCode: 2 /* Unknown */, message: "raft proposal dropped" },
  // etcd's authMaintenanceServer (Defragment, Snapshot, Hash, HashKV) returns the auth store's own errors without
  // togRPCError, so grpc-go sends them as Unknown with the auth package's text.
  MaintenancePermissionDenied: { id: 55, grpcCode: 2 /* Unknown */, message: "auth: permission denied" },
  MaintenanceUserEmpty: { id: 56, grpcCode: 2 /* Unknown */, message: "auth: user name is empty" },
  MaintenanceUserNotFound: { id: 57, grpcCode: 2 /* Unknown */, message: "auth: user name not found" },
  MaintenanceInvalidAuthToken: { id: 58, grpcCode: 2 /* Unknown */, message: "auth: invalid auth token" },
  // Not etcd's but grpc-go's: what etcd 3.4's JSON gateway answers once its TLS connection to its own member was
  // refused at the handshake (the member certificate it presents lacks clientAuth usage).
  GatewayConnectionClosed: { id: 59, grpcCode: 14 /* Unavailable */, message: "connection closed" },
  // Authenticate's password check on a user added with no_password: an auth-package error etcd does not map either.
  NoPasswordUser: { id: 60, grpcCode: 2 /* Unknown */, message: "auth: authentication failed, password was given for no password user" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof Errors;

const byId: ErrorSpec[] = [];
for (const spec of Object.values(Errors) as ErrorSpec[]) {
  if (byId[spec.id] !== undefined) throw new Error(`duplicate error id ${spec.id}`);
  byId[spec.id] = spec;
}

/**
 * An error that reaches the client as a gRPC status with etcd's message.
 * grpc-js turns `{ code, details }` into the wire status, so this class carries both.
 */
export class EtcdError extends Error {
  readonly code: number;
  readonly details: string;
  readonly id: number;
  constructor(spec: ErrorSpec) {
    super(spec.message);
    this.name = 'EtcdError';
    this.code = spec.grpcCode;
    this.details = spec.message;
    this.id = spec.id;
  }
}

/** Builds the client-facing error for a named spec, e.g. `etcdError('EmptyKey')`. */
export function etcdError(name: ErrorName): EtcdError {
  return new EtcdError(Errors[name]);
}

/** Maps a numeric id (from a results ring) back to its error. Throws on an unknown id (a bug, not input). */
export function etcdErrorById(id: number): EtcdError {
  const spec = byId[id];
  if (spec === undefined) throw new Error(`unknown error id ${id}`);
  return new EtcdError(spec);
}

/**
 * etcd's v2 API error codes and messages (etcd api: v2error; the codes the v2 keys API answers). The HTTP status of
 * each is {@link v2HttpStatus}.
 */
export const V2ErrorCodes = {
  KeyNotFound: 100,
  TestFailed: 101,
  NotFile: 102,
  NotDir: 104,
  NodeExist: 105,
  RootROnly: 107,
  DirNotEmpty: 108,
  Unauthorized: 110,
  PrevValueRequired: 201,
  TTLNaN: 202,
  IndexNaN: 203,
  InvalidField: 209,
  InvalidForm: 210,
  RefreshValue: 211,
  RefreshTTLRequired: 212,
  RaftInternal: 300,
  LeaderElect: 301,
  WatcherCleared: 400,
  EventIndexCleared: 401,
} as const;

const V2_MESSAGES: Record<number, string> = {
  100: 'Key not found',
  101: 'Compare failed',
  102: 'Not a file',
  104: 'Not a directory',
  105: 'Key already exists',
  107: 'Root is read only',
  108: 'Directory not empty',
  110: 'The request requires user authentication',
  201: 'PrevValue is Required in POST form',
  202: 'The given TTL in POST form is not a number',
  203: 'The given index in POST form is not a number',
  209: 'Invalid field',
  210: 'Invalid POST form',
  211: 'Value provided on refresh',
  212: 'A TTL must be provided on refresh',
  300: 'Raft Internal Error',
  301: 'During Leader Election',
  400: 'watcher is cleared due to etcd recovery',
  401: 'The event in requested index is outdated and cleared',
};

const V2_STATUS: Record<number, string> = {
  100: '404 Not Found',
  101: '412 Precondition Failed',
  102: '403 Forbidden',
  105: '412 Precondition Failed',
  108: '403 Forbidden',
  110: '401 Unauthorized',
  300: '500 Internal Server Error',
  301: '500 Internal Server Error',
};

/** The HTTP status line etcd answers a v2 error code with (400 for codes without their own). */
export function v2HttpStatus(code: number): string {
  return V2_STATUS[code] ?? '400 Bad Request';
}

/**
 * A v2 API error as etcd writes it: `{"errorCode","message","cause"?,"index"}` (`index` = the store index when the
 * error happened, 0 for request errors).
 */
export class V2Error extends Error {
  constructor(readonly errorCode: number, override readonly cause: string, public index: number) {
    super(V2_MESSAGES[errorCode] ?? 'Unknown error');
    this.name = 'V2Error';
  }

  /** etcd's JSON body (without the trailing newline). */
  toJson(): string {
    const cause = this.cause === '' ? '' : `,"cause":${JSON.stringify(this.cause)}`;
    return `{"errorCode":${this.errorCode},"message":${JSON.stringify(this.message)}${cause},"index":${this.index}}`;
  }
}
