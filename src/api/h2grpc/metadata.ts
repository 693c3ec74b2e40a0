/**
 * gRPC request headers and response trailers as HTTP/2 header blocks (gRPC over HTTP/2): the call's metadata
 * (custom headers, `-bin` ones base64), its `grpc-timeout`, and the percent-encoded `grpc-message`.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import { Metadata } from '@grpc/grpc-js';

/** Milliseconds per `grpc-timeout` unit (Hours, Minutes, Seconds, milli, micro, nano). */
const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };
/** `grpc-timeout` is at most 8 ASCII digits and a unit. */
const TIMEOUT_RE = /^(\d{1,8})([HMSmun])$/;

/**
 * The timeout of a `grpc-timeout` value in ms (fractions kept), undefined when absent, or null when malformed
 * (grpc-go resets those streams with PROTOCOL_ERROR).
 */
export function parseTimeoutMs(value: string | string[] | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  const m = TIMEOUT_RE.exec(Array.isArray(value) ? (value[0] ?? '') : value);
  if (m === null) return null;
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
}

/** Headers that describe the transport, not the application (not part of the call's metadata, as grpc-go). */
const TRANSPORT_HEADERS = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'user-agent', 'content-length', 'host', 'connection']);

/** True for pseudo-headers and the transport headers that are not part of a call's metadata. */
export function isTransportHeader(key: string): boolean {
  return key.charCodeAt(0) === 58 /* ':' */ || TRANSPORT_HEADERS.has(key);
}

/**
 * The call's metadata from its request headers: pseudo-headers and transport headers left out; `-bin` values
 * base64-decoded to Buffers (several values of one key arrive comma-joined or as an array).
 */
export function metadataOf(headers: IncomingHttpHeaders): Metadata {
  const md = new Metadata();
  for (const key in headers) {
    if (isTransportHeader(key)) continue;
    const v = headers[key];
    if (v === undefined) continue;
    const values = Array.isArray(v) ? v : key.endsWith('-bin') ? v.split(',') : [v];
    for (const x of values) {
      try {
        md.add(key, key.endsWith('-bin') ? Buffer.from(x.trim(), 'base64') : x);
      } catch {
        // An illegal key or value is dropped, as grpc-js does with its own server.
      }
    }
  }
  return md;
}

/** Printable ASCII other than '%' passes unchanged in `grpc-message`. */
const PLAIN_MESSAGE_RE = /^[\x20-\x24\x26-\x7e]*$/;

/**
 * A status message as `grpc-message` carries it (gRPC over HTTP/2): UTF-8, then every octet outside
 * 0x20–0x7E and '%' itself written as %XX.
 */
export function encodeGrpcMessage(details: string): string {
  if (PLAIN_MESSAGE_RE.test(details)) return details;
  let out = '';
  for (const b of Buffer.from(details, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
