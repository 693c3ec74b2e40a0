/**
 * The v2 keys API's request parameters as etcd 3.4 reads them (etcd api: v2http parseKeyRequest over Go's
 * net/http ParseForm): form values from the urlencoded body of PUT/POST (first) and from the query string, Go's
 * strconv.ParseBool / ParseUint for flags and numbers, and etcd's error code and cause for each bad parameter.
 */
import { V2Error, V2ErrorCodes as C } from '../../errors';

/** Parsed parameters of one request (etcd's etcdserverpb.Request fields the keys API sets). */
export interface KeyRequest {
  method: string;
  path: string;
  val: string;
  dir: boolean;
  prevValue: string;
  prevIndex: number;
  prevExist?: boolean;
  wait: boolean;
  since: number;
  recursive: boolean;
  sorted: boolean;
  quorum: boolean;
  stream: boolean;
  refresh?: boolean;
  /** Seconds, when given and not empty. */
  ttl?: number;
  noValueOnSuccess: boolean;
}

/** Go's url.ParseQuery: '&'-separated pairs, '+' is a space, %XX escapes; a bad escape or ';' is an error. */
export function parseGoQuery(s: string, into: Map<string, string[]>): string | null {
  let err: string | null = null;
  for (const part of s.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) {
      err ??= 'invalid semicolon separator in query';
      continue;
    }
    const eq = part.indexOf('=');
    const rawK = eq < 0 ? part : part.slice(0, eq);
    const rawV = eq < 0 ? '' : part.slice(eq + 1);
    const k = unescape(rawK);
    const v = unescape(rawV);
    if (k.err !== null || v.err !== null) {
      err ??= (k.err ?? v.err) as string;
      continue;
    }
    const list = into.get(k.s);
    if (list) list.push(v.s);
    else into.set(k.s, [v.s]);
  }
  return err;
}

function unescape(s: string): { s: string; err: string | null } {
  const plus = s.replace(/\+/g, ' ');
  if (!plus.includes('%')) return { s: plus, err: null };
  const m = /%(?![0-9a-fA-F]{2})(.{0,2})/.exec(plus);
  if (m) return { s: '', err: `invalid URL escape ${JSON.stringify(`%${m[1]}`)}` };
  const bytes: number[] = [];
  for (let i = 0; i < plus.length; i++) {
    if (plus[i] === '%') {
      bytes.push(parseInt(plus.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(plus[i]!, 'utf8')) bytes.push(b);
    }
  }
  return { s: Buffer.from(bytes).toString('utf8'), err: null };
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

function bool(form: Map<string, string[]>, key: string, code: number, cause: string): boolean {
  const v = form.get(key)?.[0];
  if (v === undefined) return false;
  if (GO_TRUE.has(v)) return true;
  if (GO_FALSE.has(v)) return false;
  throw new V2Error(code, cause, 0);
}

function uint(form: Map<string, string[]>, key: string, code: number, cause: string): number {
  const v = form.get(key)?.[0];
  if (v === undefined) return 0;
  if (!/^[0-9]+$/.test(v) || BigInt(v) > 0xffff_ffff_ffff_ffffn) throw new V2Error(code, cause, 0);
  return Number(v);
}

/**
 * etcd parseKeyRequest. `key` is the decoded path after /v2/keys, `query` the raw query string, `body` the raw
 * urlencoded body (used for PUT/POST). Throws V2Error (index 0) for a bad parameter.
 */
export function parseKeyRequest(method: string, key: string, query: string, body: string | null): KeyRequest {
  const form = new Map<string, string[]>();
  const err = (body !== null ? parseGoQuery(body, form) : null) ?? parseGoQuery(query, form);
  if (err !== null) throw new V2Error(C.InvalidForm, err, 0);
  const first = (k: string): string => form.get(k)?.[0] ?? '';
  const prevIndex = uint(form, 'prevIndex', C.IndexNaN, 'invalid value for "prevIndex"');
  const since = uint(form, 'waitIndex', C.IndexNaN, 'invalid value for "waitIndex"');
  const recursive = bool(form, 'recursive', C.InvalidField, 'invalid value for "recursive"');
  const sorted = bool(form, 'sorted', C.InvalidField, 'invalid value for "sorted"');
  const wait = bool(form, 'wait', C.InvalidField, 'invalid value for "wait"');
  const dir = bool(form, 'dir', C.InvalidField, 'invalid value for "dir"');
  const quorum = bool(form, 'quorum', C.InvalidField, 'invalid value for "quorum"');
  const stream = bool(form, 'stream', C.InvalidField, 'invalid value for "stream"');
  if (wait && method !== 'GET') throw new V2Error(C.InvalidField, '"wait" can only be used with GET requests', 0);
  const prevValue = first('prevValue');
  if (form.has('prevValue') && prevValue === '') throw new V2Error(C.PrevValueRequired, '"prevValue" cannot be empty', 0);
  const noValueOnSuccess = bool(form, 'noValueOnSuccess', C.InvalidField, 'invalid value for "noValueOnSuccess"');
  let ttl: number | undefined;
  if (first('ttl').length > 0) ttl = uint(form, 'ttl', C.TTLNaN, 'invalid value for "ttl"');
  let prevExist: boolean | undefined;
  if (form.has('prevExist')) prevExist = bool(form, 'prevExist', C.InvalidField, 'invalid value for prevExist');
  let refresh: boolean | undefined;
  if (form.has('refresh')) {
    refresh = bool(form, 'refresh', C.InvalidField, 'invalid value for refresh');
    if (refresh) {
      if (form.has('value') && first('value') !== '') throw new V2Error(C.RefreshValue, 'A value was provided on a refresh', 0);
      if (ttl === undefined) throw new V2Error(C.RefreshTTLRequired, 'No TTL value set', 0);
    }
  }
  return { method, path: key, val: first('value'), dir, prevValue, prevIndex, prevExist, wait, since, recursive, sorted, quorum, stream, refresh, ttl, noValueOnSuccess };
}
