/**
 * What Go's encoding/json and encoding/base64 say about a request body, so the JSON gateway answers bad input
 * with etcd 3.4's exact texts (its grpc-gateway decodes bodies with a json.Decoder and jsonpb):
 *  - {@link scanValue}: finds where the first JSON value of a byte buffer ends (json.Decoder reads one value and
 *    ignores what follows), or the scanner's error ("invalid character 'g' looking for beginning of value",
 *    "unexpected EOF", ...). Behaviour: Go encoding/json scanner.go state machine (messages, quoting, max depth).
 *  - {@link goBase64Decode}: base64.StdEncoding.Decode, with its "illegal base64 data at input byte N" offsets
 *    and its tolerance of \r and \n.
 *  - {@link goQuote}: a JSON string as Go's encoder writes it (HTML-safe escapes of <, >, &, U+2028, U+2029).
 * Everything here is pure (no I/O) and works on bytes, as Go does.
 */

/** A Go-worded decoding failure; `message` is the exact text etcd puts in its error body. */
export class GoJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoJsonError';
  }
}

/** Go encoding/json scanner maxNestingDepth: deeper values are refused with "exceeded max depth". */
export const MAX_NESTING_DEPTH = 10_000;

/** Outcome of {@link scanValue}. */
export type ScanResult =
  | { kind: 'value'; start: number; end: number } // [start, end) holds one complete value
  | { kind: 'eof' } // only whitespace: Go's io.EOF (an empty body is an empty request)
  | { kind: 'incomplete' } // a value started but the bytes ran out (io.ErrUnexpectedEOF once the body ended)
  | { kind: 'error'; message: string };

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);

/** Go strconv.IsPrint for a rune below 0x100 (Latin-1): the graphic characters, U+00AD excluded. */
function isPrintLatin1(c: number): boolean {
  return (c >= 0x20 && c < 0x7f) || (c >= 0xa1 && c !== 0xad && c <= 0xff);
}

/** Go scanner quoteChar: how a byte is shown in a syntax error ('x', '\'', '"', '\x00', '\u0080'). */
export function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  if (isPrintLatin1(c)) return `'${String.fromCharCode(c)}'`;
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v' };
  if (named[c] !== undefined) return `'${named[c]}'`;
  if (c < 0x80) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  return `'\\u${c.toString(16).padStart(4, '0')}'`;
}

const enum P { ObjectKey, ObjectValue, ArrayValue }

/**
 * Scans the first JSON value of `buf` from `from`, as json.Decoder.Decode would. A top-level number is complete
 * only when a following byte (or the end of the body, `final`) delimits it. Never throws.
 */
export function scanValue(buf: Uint8Array, from = 0, final = true): ScanResult {
  let i = from;
  const n = buf.length;
  while (i < n && isSpace(buf[i]!)) i++;
  if (i === n) return final ? { kind: 'eof' } : { kind: 'incomplete' };
  const start = i;
  const stack: P[] = [];
  const err = (c: number, ctx: string): ScanResult => ({ kind: 'error', message: `invalid character ${quoteChar(c)} ${ctx}` });
  // state: what the next byte may be
  let state: 'value' | 'valueOrEnd' | 'keyOrEnd' | 'key' | 'afterValue' = 'value';
  for (;;) {
    if (state === 'afterValue') {
      if (stack.length === 0) return { kind: 'value', start, end: i };
      while (i < n && isSpace(buf[i]!)) i++;
      if (i >= n) break;
      const c = buf[i]!;
      const top = stack[stack.length - 1]!;
      if (top === P.ObjectKey) {
        if (c !== 0x3a) return err(c, 'after object key');
        stack[stack.length - 1] = P.ObjectValue;
        i++;
        state = 'value';
      } else if (top === P.ObjectValue) {
        if (c === 0x2c) { stack[stack.length - 1] = P.ObjectKey; i++; state = 'key'; }
        else if (c === 0x7d) { stack.pop(); i++; state = 'afterValue'; }
        else return err(c, 'after object key:value pair');
      } else {
        if (c === 0x2c) { i++; state = 'value'; }
        else if (c === 0x5d) { stack.pop(); i++; state = 'afterValue'; }
        else return err(c, 'after array element');
      }
      continue;
    }
    while (i < n && isSpace(buf[i]!)) i++;
    if (i >= n) break;
    const c = buf[i]!;
    if (state === 'keyOrEnd' || state === 'key') {
      if (state === 'keyOrEnd' && c === 0x7d) { stack.pop(); i++; state = 'afterValue'; continue; }
      // A key is a string: scanned below like a string value.
      if (c !== 0x22) return err(c, 'looking for beginning of object key string');
    } else if (state === 'valueOrEnd' && c === 0x5d) { stack.pop(); i++; state = 'afterValue'; continue; }
    // beginning of a value
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= MAX_NESTING_DEPTH) return { kind: 'error', message: 'exceeded max depth' };
      stack.push(c === 0x7b ? P.ObjectKey : P.ArrayValue);
      i++;
      state = c === 0x7b ? 'keyOrEnd' : 'valueOrEnd';
      continue;
    }
    if (c === 0x22) {
      const r = scanString(buf, i);
      if (r.error) return r.error;
      if (r.end < 0) break;
      i = r.end;
      state = 'afterValue';
      continue;
    }
    if (c === 0x2d || isDigit(c)) {
      const r = scanNumber(buf, i);
      if (r.error) return r.error;
      if (r.end < 0 || (r.end === n && stack.length === 0 && !final)) break;
      if (r.end === n && stack.length > 0) break;
      i = r.end;
      state = 'afterValue';
      continue;
    }
    if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null';
      let j = 1;
      for (; j < word.length; j++) {
        if (i + j >= n) break;
        const d = buf[i + j]!;
        if (d !== word.charCodeAt(j)) return err(d, `in literal ${word} (expecting ${quoteChar(word.charCodeAt(j))})`);
      }
      if (j < word.length) break;
      i += word.length;
      state = 'afterValue';
      continue;
    }
    return err(c, 'looking for beginning of value');
  }
  // Ran out of bytes inside a value.
  if (!final) return { kind: 'incomplete' };
  // A complete top-level number at the very end of the body.
  return { kind: 'error', message: 'unexpected EOF' };
}

/** Scans a string literal starting at the opening quote; end = index after the closing quote, -1 when cut short. */
function scanString(buf: Uint8Array, at: number): { end: number; error?: ScanResult } {
  const n = buf.length;
  let i = at + 1;
  const err = (c: number, ctx: string): { end: number; error: ScanResult } => ({ end: -1, error: { kind: 'error', message: `invalid character ${quoteChar(c)} ${ctx}` } });
  while (i < n) {
    const c = buf[i]!;
    if (c === 0x22) return { end: i + 1 };
    if (c === 0x5c) {
      if (i + 1 >= n) return { end: -1 };
      const e = buf[i + 1]!;
      if (e === 0x75) {
        for (let k = 2; k < 6; k++) {
          if (i + k >= n) return { end: -1 };
          if (!isHex(buf[i + k]!)) return err(buf[i + k]!, 'in \\u hexadecimal character escape');
        }
        i += 6;
        continue;
      }
      if (![0x62, 0x66, 0x6e, 0x72, 0x74, 0x5c, 0x2f, 0x22].includes(e)) return err(e, 'in string escape code');
      i += 2;
      continue;
    }
    if (c < 0x20) return err(c, 'in string literal');
    i++;
  }
  return { end: -1 };
}

/** Scans a number literal; end = index after it (it may end at the buffer's end), -1 when cut short mid-syntax. */
function scanNumber(buf: Uint8Array, at: number): { end: number; error?: ScanResult } {
  const n = buf.length;
  let i = at;
  const err = (c: number, ctx: string): { end: number; error: ScanResult } => ({ end: -1, error: { kind: 'error', message: `invalid character ${quoteChar(c)} ${ctx}` } });
  if (buf[i] === 0x2d) {
    i++;
    if (i >= n) return { end: -1 };
    if (!isDigit(buf[i]!)) return err(buf[i]!, 'in numeric literal');
  }
  if (buf[i] === 0x30) i++;
  else while (i < n && isDigit(buf[i]!)) i++;
  if (i < n && buf[i] === 0x2e) {
    i++;
    if (i >= n) return { end: -1 };
    if (!isDigit(buf[i]!)) return err(buf[i]!, 'after decimal point in numeric literal');
    while (i < n && isDigit(buf[i]!)) i++;
  }
  if (i < n && (buf[i] === 0x65 || buf[i] === 0x45)) {
    i++;
    if (i < n && (buf[i] === 0x2b || buf[i] === 0x2d)) i++;
    if (i >= n) return { end: -1 };
    if (!isDigit(buf[i]!)) return err(buf[i]!, 'in exponent of numeric literal');
    while (i < n && isDigit(buf[i]!)) i++;
  }
  return { end: i };
}

/**
 * json.Unmarshal's whole-input check (used by jsonpb on the inside of a quoted number): the text must be exactly
 * one value. Returns Go's error text, or null when valid.
 */
export function checkValidText(text: string): string | null {
  const buf = Buffer.from(text, 'utf8');
  const r = scanValue(buf, 0, true);
  if (r.kind === 'eof' || r.kind === 'incomplete') return 'unexpected end of JSON input';
  if (r.kind === 'error') return r.message === 'unexpected EOF' ? 'unexpected end of JSON input' : r.message;
  let i = r.end;
  while (i < buf.length && isSpace(buf[i]!)) i++;
  if (i < buf.length) return `invalid character ${quoteChar(buf[i]!)} after top-level value`;
  return null;
}

// ------------------------------------------------------------------------------------------------- base64

const B64_MAP = (() => {
  const m = new Int16Array(256).fill(-1);
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < abc.length; i++) m[abc.charCodeAt(i)] = i;
  return m;
})();
const CANONICAL_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * base64.StdEncoding.DecodeString as Go's encoding/json applies it to a []byte field: padding required, \r and
 * \n skipped, non-strict (trailing bits ignored). Throws {@link GoJsonError} "illegal base64 data at input byte N".
 */
export function goBase64Decode(s: string): Buffer {
  if (CANONICAL_B64.test(s)) return Buffer.from(s, 'base64');
  const src = Buffer.from(s, 'utf8');
  const out: number[] = [];
  let si = 0;
  const corrupt = (at: number): never => { throw new GoJsonError(`illegal base64 data at input byte ${at}`); };
  while (si < src.length) {
    const dbuf = [0, 0, 0, 0];
    let dlen = 4;
    let j = 0;
    let end = false;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Buffer.from(out);
        corrupt(si - j); // padding is required
      }
      const inb = src[si]!;
      si++;
      const v = B64_MAP[inb]!;
      if (v >= 0) { dbuf[j] = v; continue; }
      if (inb === 0x0a || inb === 0x0d) { j--; continue; }
      if (inb !== 0x3d) corrupt(si - 1);
      // padding
      if (j === 0 || j === 1) corrupt(si - 1);
      if (j === 2) {
        while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
        if (si === src.length) corrupt(src.length);
        if (src[si] !== 0x3d) corrupt(si - 1);
        si++;
      }
      while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
      if (si < src.length) corrupt(si);
      dlen = j;
      end = true;
      break;
    }
    const val = (dbuf[0]! << 18) | (dbuf[1]! << 12) | (dbuf[2]! << 6) | dbuf[3]!;
    const b = [(val >> 16) & 0xff, (val >> 8) & 0xff, val & 0xff];
    for (let k = 0; k < dlen - 1; k++) out.push(b[k]!);
    if (end) break;
  }
  return Buffer.from(out);
}

// ------------------------------------------------------------------------------------------------- output

const HTML_UNSAFE = /[<>&\u2028\u2029]/g;
const HTML_UNSAFE_ANY = /[<>&\u2028\u2029]/;

/** A string as Go's encoding/json writes it: JSON escapes plus \u003c, \u003e, \u0026, \u2028, \u2029. */
export function goQuote(s: string): string {
  return goHtmlEscape(JSON.stringify(s));
}

/**
 * Go's encoding/json output escaping applied to JSON text (json.Marshal and an Encoder with SetEscapeHTML(true), the
 * default): `<`, `>`, `&`, U+2028 and U+2029 written as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. Safe on
 * whole JSON documents: these characters only occur inside strings.
 */
export function goHtmlEscape(json: string): string {
  return HTML_UNSAFE_ANY.test(json) ? json.replace(HTML_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
}
