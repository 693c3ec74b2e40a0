/**
 * Protobuf messages ↔ JSON exactly as etcd 3.4's grpc-gateway writes and reads them (golang/protobuf 1.3 jsonpb
 * with OrigName, no EmitDefaults; unknown fields allowed), driven by the protobufjs reflection of our .proto files:
 *
 * Output ({@link toJson}): proto field names (`create_revision`, `ID`, `dbSize`), declaration order; 64-bit integers
 * as strings, 32-bit as numbers; bytes as padded base64; enums by name; zero, false, empty and absent fields
 * omitted (an oneof member that is set is written even when zero; a present sub-message even when empty).
 *
 * Input ({@link fromJson}): a JSON value already parsed by JSON.parse → a protobufjs message instance (camelCase
 * properties, int64 as number) ready for the server's checks and for encoding. Accepts the proto name or its
 * lowerCamel JSON name (the proto name wins), enums by name or number, integers as numbers or strings, `null`
 * as absent; ignores unknown fields. Mismatches throw {@link GoJsonError} with jsonpb / encoding/json's text
 * ("json: cannot unmarshal number into Go value of type []uint8", `unknown value "X" for enum pkg.Msg_Enum`).
 * Known gap: a number literal's text in an error is JS's rendering of it (Go quotes the literal as written).
 */
import type protobuf from 'protobufjs';
import { root } from '../../wire/codec';
import { checkValidText, goBase64Decode, goQuote, GoJsonError } from './go-json';

type Scalar = 'int64' | 'uint64' | 'int32' | 'uint32' | 'bool' | 'string' | 'bytes' | 'double';

interface FieldPlan {
  /** protobufjs property name (camelCase). */
  prop: string;
  /** Name written and read first (the .proto name). */
  orig: string;
  /** protoc's lowerCamel json_name, also accepted on input. */
  json: string;
  repeated: boolean;
  oneof: boolean;
  scalar?: Scalar;
  enumPlan?: EnumPlan;
  message?: TypePlan;
  /** `"orig":` prefix, precomputed. */
  key: string;
}

interface EnumPlan { goName: string; byName: Map<string, number>; byValue: Map<number, string> }

/** The conversion plan of one message type. */
export interface TypePlan {
  type: protobuf.Type;
  fields: FieldPlan[];
  /** Regular fields first, then oneof members: the order jsonpb 1.3 reads them (and reports errors). */
  readOrder: FieldPlan[];
}

const SCALARS: Record<string, Scalar> = {
  int64: 'int64', sint64: 'int64', sfixed64: 'int64', uint64: 'uint64', fixed64: 'uint64',
  int32: 'int32', sint32: 'int32', sfixed32: 'int32', uint32: 'uint32', fixed32: 'uint32',
  bool: 'bool', string: 'string', bytes: 'bytes', double: 'double', float: 'double',
};
const GO_TYPE: Record<Scalar, string> = { int64: 'int64', uint64: 'uint64', int32: 'int32', uint32: 'uint32', bool: 'bool', string: 'string', bytes: '[]uint8', double: 'float64' };

/** protoc's json_name: underscores dropped, the letter after each one upper-cased. */
function jsonName(orig: string): string {
  let out = '';
  let up = false;
  for (const ch of orig) {
    if (ch === '_') { up = true; continue; }
    out += up ? ch.toUpperCase() : ch;
    up = false;
  }
  return out;
}

/** Go's name of a generated type: package, then nested names joined by '_' (etcdserverpb.RangeRequest_SortOrder). */
function goTypeName(fullName: string): string {
  const parts = fullName.replace(/^\./, '').split('.');
  return `${parts[0]}.${parts.slice(1).join('_')}`;
}

/** protobufjs camelCases field names at parse time; the .proto names come from a second, case-keeping parse. */
const originalNames: Map<string, Map<number, string>> = (() => {
  const keep = new (root.constructor as typeof protobuf.Root)();
  keep.resolvePath = root.resolvePath;
  keep.loadSync(['kv.proto', 'rpc.proto', 'lock.proto', 'election.proto'], { keepCase: true });
  const out = new Map<string, Map<number, string>>();
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if ((o as protobuf.Type).fieldsArray !== undefined) {
        const t = o as protobuf.Type;
        out.set(t.fullName, new Map(t.fieldsArray.map((f) => [f.id, f.name])));
      }
      if ((o as protobuf.NamespaceBase).nestedArray !== undefined) walk(o as protobuf.NamespaceBase);
    }
  };
  walk(keep);
  return out;
})();

const plans = new Map<string, TypePlan>();
const enums = new Map<string, EnumPlan>();

function enumPlan(e: protobuf.Enum): EnumPlan {
  let p = enums.get(e.fullName);
  if (!p) {
    p = { goName: goTypeName(e.fullName), byName: new Map(Object.entries(e.values)), byValue: new Map() };
    for (const [name, v] of Object.entries(e.values)) if (!p.byValue.has(v)) p.byValue.set(v, name);
    enums.set(e.fullName, p);
  }
  return p;
}

/** The (cached) plan of a message type, by protobufjs Type or fully qualified name ("etcdserverpb.PutRequest"). */
export function planOf(t: protobuf.Type | string): TypePlan {
  const type = typeof t === 'string' ? root.lookupType(t) : t;
  let p = plans.get(type.fullName);
  if (p) return p;
  p = { type, fields: [], readOrder: [] };
  plans.set(type.fullName, p); // before the fields: recursive types
  const names = originalNames.get(type.fullName);
  for (const f of type.fieldsArray) {
    f.resolve();
    const orig = names?.get(f.id) ?? f.name;
    const fp: FieldPlan = { prop: f.name, orig, json: jsonName(orig), repeated: f.repeated, oneof: f.partOf !== null && f.partOf !== undefined, key: `${goQuote(orig)}:` };
    const rt = f.resolvedType;
    if (rt && (rt as protobuf.Enum).values !== undefined && (rt as protobuf.Type).fieldsArray === undefined) fp.enumPlan = enumPlan(rt as protobuf.Enum);
    else if (rt) fp.message = planOf(rt as protobuf.Type);
    else {
      const s = SCALARS[f.type];
      if (!s) throw new Error(`json-codec: unsupported field type ${f.type} in ${type.fullName}.${f.name}`);
      fp.scalar = s;
    }
    p.fields.push(fp);
  }
  p.readOrder = [...p.fields.filter((f) => !f.oneof), ...p.fields.filter((f) => f.oneof)];
  return p;
}

// ------------------------------------------------------------------------------------------------- output

const hasOwn = Object.prototype.hasOwnProperty;

function bytesB64(v: Uint8Array): string {
  return (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)).toString('base64');
}

function scalarJson(f: FieldPlan, v: unknown): string {
  if (f.enumPlan) {
    const name = f.enumPlan.byValue.get(v as number);
    return name === undefined ? String(v) : `"${name}"`;
  }
  switch (f.scalar) {
    case 'int64': case 'uint64': return `"${String(v)}"`;
    case 'int32': case 'uint32': case 'double': return String(v);
    case 'bool': return v ? 'true' : 'false';
    case 'string': return goQuote(v as string);
    case 'bytes': return `"${bytesB64(v as Uint8Array)}"`;
    default: return 'null';
  }
}

function isDefault(f: FieldPlan, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (f.enumPlan) return v === 0;
  switch (f.scalar) {
    case 'bool': return v === false;
    case 'string': return v === '';
    case 'bytes': return (v as Uint8Array).length === 0;
    default: return typeof v === 'number' ? v === 0 : Number(v) === 0;
  }
}

/** Writes `msg` (a protobufjs-decoded message or plain object with camelCase properties) as jsonpb would. */
export function toJson(plan: TypePlan, msg: Record<string, unknown>): string {
  let out = '{';
  let first = true;
  for (const f of plan.fields) {
    const v = msg[f.prop];
    let s: string;
    if (f.repeated) {
      const a = v as unknown[] | undefined;
      if (!a || a.length === 0) continue;
      s = '[';
      for (let i = 0; i < a.length; i++) {
        if (i > 0) s += ',';
        s += f.message ? toJson(f.message, a[i] as Record<string, unknown>) : scalarJson(f, a[i]);
      }
      s += ']';
    } else if (f.message) {
      if (v === null || v === undefined) continue;
      s = toJson(f.message, v as Record<string, unknown>);
    } else if (f.oneof) {
      if (v === null || v === undefined || !hasOwn.call(msg, f.prop)) continue;
      s = scalarJson(f, v);
    } else {
      if (isDefault(f, v)) continue;
      s = scalarJson(f, v);
    }
    out += first ? f.key + s : ',' + f.key + s;
    first = false;
  }
  return out + '}';
}

// ------------------------------------------------------------------------------------------------- input

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string': return 'string';
    case 'number': return 'number';
    case 'boolean': return 'bool';
    default: return 'object';
  }
}

const cannot = (what: string, goType: string): GoJsonError => new GoJsonError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);

const INT_RANGE: Record<string, [number, number]> = {
  int64: [-(2 ** 63), 2 ** 63 - 1], uint64: [0, 2 ** 64 - 1], int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1],
};

/** An integer (or enum number) from a JSON number or a quoted one, as jsonpb 1.3 + encoding/json check it. */
function integer(raw: unknown, kind: 'int64' | 'uint64' | 'int32' | 'uint32', goType: string): number {
  let v = raw;
  if (typeof v === 'string') {
    // jsonpb drops the quotes and hands the inside to json.Unmarshal.
    const bad = checkValidText(v);
    if (bad !== null) throw new GoJsonError(bad);
    v = JSON.parse(v);
    if (typeof v === 'number') {
      const text = raw as string;
      const [lo, hi] = INT_RANGE[kind]!;
      if (!Number.isInteger(v) || v < lo || v > hi || /[.eE]/.test(text)) throw cannot(`number ${text.trim()}`, goType);
      return v;
    }
    if (v === null) return 0;
  }
  if (typeof v !== 'number') throw cannot(kindOf(v), goType);
  const [lo, hi] = INT_RANGE[kind]!;
  if (!Number.isInteger(v) || v < lo || v > hi) throw cannot(`number ${String(v)}`, goType);
  return v;
}

function bytesFrom(raw: unknown): Buffer {
  if (typeof raw === 'string') return goBase64Decode(raw);
  if (Array.isArray(raw)) {
    // encoding/json fills a []byte from an array of numbers element by element.
    return Buffer.from(raw.map((e) => (e === null ? 0 : integer(e, 'uint32', 'uint8') > 255 ? (() => { throw cannot(`number ${String(e)}`, 'uint8'); })() : (e as number))));
  }
  throw cannot(kindOf(raw), '[]uint8');
}

function scalarFrom(f: FieldPlan, raw: unknown): unknown {
  if (f.enumPlan) {
    if (typeof raw === 'string') {
      const n = f.enumPlan.byName.get(raw);
      if (n === undefined) throw new GoJsonError(`unknown value ${JSON.stringify(raw)} for enum ${f.enumPlan.goName}`);
      return n;
    }
    return integer(raw, 'int32', f.enumPlan.goName);
  }
  switch (f.scalar) {
    case 'int64': case 'uint64': case 'int32': case 'uint32':
      return integer(raw, f.scalar, GO_TYPE[f.scalar]);
    case 'bool':
      if (typeof raw !== 'boolean') throw cannot(kindOf(raw), 'bool');
      return raw;
    case 'string':
      if (typeof raw !== 'string') throw cannot(kindOf(raw), 'string');
      return raw;
    case 'bytes':
      return bytesFrom(raw);
    default:
      if (typeof raw !== 'number') throw cannot(kindOf(raw), 'float64');
      return raw;
  }
}

function valueFrom(f: FieldPlan, raw: unknown): unknown {
  if (raw === null) return f.message ? f.message.type.create({}) : undefined;
  if (f.message) return fromJson(f.message, raw);
  return scalarFrom(f, raw);
}

/**
 * Builds a message instance of `plan`'s type from a parsed JSON value (`null` → an empty message). Throws
 * {@link GoJsonError} with jsonpb's text on the first mismatch, in jsonpb's field order.
 */
export function fromJson<T = Record<string, unknown>>(plan: TypePlan, value: unknown): T {
  if (value === null) return plan.type.create({}) as T;
  if (typeof value !== 'object' || Array.isArray(value)) throw cannot(kindOf(value), 'map[string]json.RawMessage');
  const obj = value as Record<string, unknown>;
  const props: Record<string, unknown> = {};
  for (const f of plan.readOrder) {
    let raw: unknown;
    if (hasOwn.call(obj, f.orig)) raw = obj[f.orig];
    else if (f.json !== f.orig && hasOwn.call(obj, f.json)) raw = obj[f.json];
    else continue;
    if (raw === null && !f.oneof) continue;
    if (f.repeated) {
      if (!Array.isArray(raw)) throw cannot(kindOf(raw), '[]json.RawMessage');
      props[f.prop] = raw.map((e) => (e === null ? (f.message ? f.message.type.create({}) : defaultOf(f)) : valueFrom(f, e)));
      continue;
    }
    const v = valueFrom(f, raw);
    if (v !== undefined) props[f.prop] = v;
    else if (f.oneof) props[f.prop] = defaultOf(f);
  }
  return plan.type.create(props) as T;
}

function defaultOf(f: FieldPlan): unknown {
  if (f.enumPlan) return 0;
  switch (f.scalar) {
    case 'bool': return false;
    case 'string': return '';
    case 'bytes': return Buffer.alloc(0);
    default: return 0;
  }
}
