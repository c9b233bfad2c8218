/**
 * Incremental HTTP/1.x head reader (RFC 9112 §2-5), sans-I/O. Bytes go in as they arrive; once the blank line that
 * ends the head is seen, the parsed head comes out together with every byte after it (`leftover`), which belongs to
 * whatever follows (a body, a tunnel, WebSocket frames) and is never dropped.
 *
 * Limits live here, with their own errors: a head over `maxHeadBytes` is HEAD_TOO_LARGE (431), more than
 * `maxHeaders` fields likewise. Bytes that cannot start an HTTP message are rejected as soon as they are seen,
 * not after 16 KiB of waiting. The scan is linear: each byte is copied and examined once.
 */
import { invalidArgument, RemoteProtocolError, WsviaError } from '../errors.js';
import { isToken, isTokenChar, isValidFieldValue, type HeaderList } from './headers.js';

export interface HeadLimits {
  /** The whole head, start line and fields, including the blank line. */
  readonly maxHeadBytes: number;
  readonly maxHeaders: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = { maxHeadBytes: 16 * 1024, maxHeaders: 100 };

export type HttpVersion = '1.0' | '1.1';

export interface ResponseHead {
  readonly kind: 'response';
  readonly version: HttpVersion;
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
}

export interface RequestHead {
  readonly kind: 'request';
  readonly method: string;
  /** The request-target as sent: origin-form, absolute-form, authority-form (CONNECT) or `*`. */
  readonly target: string;
  readonly version: HttpVersion;
  readonly headers: HeaderList;
}

export type Head = ResponseHead | RequestHead;

export interface HeadResult<H extends Head> {
  readonly head: H;
  /** Bytes that followed the head in the input; empty when none. */
  readonly leftover: Uint8Array;
  /** Size of the head on the wire, blank line included. */
  readonly headBytes: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const EMPTY = new Uint8Array(0);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
/**
 * What the first 12 bytes of a response must be: `HTTP/1.0 ` or `HTTP/1.1 `, then a 3-digit status. Checked byte
 * by byte as they arrive, so a peer that speaks something else is caught at its first wrong byte.
 */
const STATUS_LINE_PREFIX: readonly ((c: number) => boolean)[] = [
  ...[...'HTTP/1.'].map((ch) => (c: number) => c === ch.charCodeAt(0)),
  (c) => c === 0x30 || c === 0x31,
  (c) => c === 0x20,
  isDigit,
  isDigit,
  isDigit,
];

/** Context for error messages: who sent these bytes (e.g. `proxy http://p:3128`). */
export interface HeadReaderContext {
  readonly peer: string;
  readonly hop: 'proxy' | 'upgrade' | 'server' | 'tunnel';
}

abstract class HeadReader<H extends Head> {
  readonly #limits: HeadLimits;
  #buf: Uint8Array;
  #len = 0;
  #scanned = 0;
  #done = false;
  protected readonly context: HeadReaderContext;

  constructor(context: HeadReaderContext, limits: HeadLimits = DEFAULT_HEAD_LIMITS) {
    this.context = context;
    this.#limits = limits;
    // No buffer until a head comes in pieces, then small and grown by doubling up to the limit: a server holds one
    // reader per connection being read, most heads are a few hundred bytes and arrive in one read.
    this.#buf = EMPTY;
  }

  /** Bytes received so far that belong to the head (for diagnostics when the peer closes mid-head). */
  get received(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /**
   * Feed bytes. Returns the head and the leftover once complete, `undefined` while more are needed.
   * Throws a {@link RemoteProtocolError} (a WsviaError) on malformed or oversized input.
   */
  receive(chunk: Uint8Array): HeadResult<H> | undefined {
    if (this.#done) throw new Error('HeadReader: head already complete');
    if (this.#len === 0) {
      const whole = this.#wholeIn(chunk);
      if (whole !== undefined) return whole;
    }
    let offset = 0;
    while (offset < chunk.length) {
      const room = this.#limits.maxHeadBytes - this.#len;
      if (room === 0) throw this.#tooLarge();
      const take = Math.min(room, chunk.length - offset);
      if (this.#len + take > this.#buf.length) this.#grow(this.#len + take);
      this.#buf.set(chunk.subarray(offset, offset + take), this.#len);
      const before = this.#len;
      this.#len += take;
      this.checkPrefix(this.#buf.subarray(0, Math.min(this.#len, 16)));
      const end = this.#findEnd();
      if (end >= 0) {
        this.#done = true;
        const consumedFromChunk = offset + (end - before);
        const head = this.parse(this.#buf.subarray(0, end));
        const leftover = consumedFromChunk < chunk.length ? chunk.subarray(consumedFromChunk) : EMPTY;
        return { head, leftover, headBytes: end };
      }
      offset += take;
    }
    if (this.#len >= this.#limits.maxHeadBytes) throw this.#tooLarge();
    return undefined;
  }

  /**
   * A head that came whole in one chunk is parsed where it lies: no copy, no buffer of the reader's own (the
   * common case, and a server's per-connection cost). Undefined when the chunk does not hold a whole head.
   */
  #wholeIn(chunk: Uint8Array): HeadResult<H> | undefined {
    const end = endOfHead(chunk, 0, Math.min(chunk.length, this.#limits.maxHeadBytes));
    if (end < 0) return undefined;
    this.checkPrefix(chunk.subarray(0, Math.min(end, 16)));
    // What `received` shows in an error about this head.
    this.#buf = chunk.subarray(0, end);
    this.#len = end;
    this.#done = true;
    const head = this.parse(this.#buf);
    return { head, leftover: end < chunk.length ? chunk.subarray(end) : EMPTY, headBytes: end };
  }

  #grow(needed: number): void {
    let size = Math.max(this.#buf.length, 1024);
    while (size < needed) size *= 2;
    const next = new Uint8Array(Math.min(size, this.#limits.maxHeadBytes));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Returns the index just past the blank line, or -1. Accepts CRLF and bare LF line ends (RFC 9112 §2.2). */
  #findEnd(): number {
    const end = endOfHead(this.#buf, Math.max(0, this.#scanned - 2), this.#len);
    if (end < 0) this.#scanned = this.#len;
    return end;
  }

  #tooLarge(): WsviaError {
    return new RemoteProtocolError(
      `${this.context.peer} sent an HTTP head over ${this.#limits.maxHeadBytes} bytes`,
      {
        hop: this.context.hop,
        code: 'HEAD_TOO_LARGE',
        statusHint: 431,
        hint: 'the peer is not speaking HTTP, or is misbehaving',
      },
    );
  }

  protected protocolError(what: string, hint?: string): RemoteProtocolError {
    return new RemoteProtocolError(`${this.context.peer} sent ${what}`, {
      hop: this.context.hop,
      ...(hint === undefined ? {} : { hint }),
      details: { received: printable(this.received, 80) },
    });
  }

  /** Reject as early as the first bytes prove the input is not an HTTP message of this kind. */
  protected abstract checkPrefix(start: Uint8Array): void;
  protected abstract parseStartLine(line: string): Omit<H, 'headers'>;

  protected parse(bytes: Uint8Array): H {
    // latin1: RFC 9110 §5.5 field values are octets; decoding each byte to one code unit keeps them exact.
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    // Lines are walked in place (no split): a head ends with an empty line, and its lines end in LF or CRLF.
    let eol = text.indexOf('\n');
    const startLine = withoutCr(text, 0, eol < 0 ? text.length : eol);
    if (startLine === '') throw this.protocolError('an empty start line');
    const head = this.parseStartLine(startLine) as H;
    const headers: [string, string][] = [];
    for (let from = eol + 1; eol >= 0 && from < text.length; from = eol + 1) {
      eol = text.indexOf('\n', from);
      const line = withoutCr(text, from, eol < 0 ? text.length : eol);
      if (line === '') break;
      const first = line.charCodeAt(0);
      if (first === SP || first === HTAB) {
        // obs-fold (RFC 9112 §5.2): replace the fold with a space, as a proxy or user agent may.
        const last = headers[headers.length - 1];
        if (last === undefined) throw this.protocolError('a continuation line before any header field');
        last[1] = trimOws(`${last[1]} ${trimOws(line)}`);
        // The folded part is value too: a bare CR or NUL there is no more acceptable than on the first line.
        if (!isValidFieldValue(last[1])) throw this.protocolError(`an invalid value for header ${last[0]}`);
        continue;
      }
      headers.push(this.#field(line));
      if (headers.length > this.#limits.maxHeaders) throw this.#tooManyFields();
    }
    (head as { headers: HeaderList }).headers = headers;
    return head;
  }

  /** One `name: value` line, checked. */
  #field(line: string): [string, string] {
    const colon = line.indexOf(':');
    if (colon <= 0) throw this.protocolError(`a malformed header line ${JSON.stringify(line.slice(0, 60))}`);
    const name = line.slice(0, colon);
    // RFC 9112 §5.1: no whitespace between the field name and the colon.
    if (!isToken(name))
      throw this.protocolError(`an invalid header name ${JSON.stringify(name.slice(0, 60))}`);
    const value = trimOws(line.slice(colon + 1));
    if (!isValidFieldValue(value)) throw this.protocolError(`an invalid value for header ${name}`);
    return [name, value];
  }

  #tooManyFields(): RemoteProtocolError {
    return new RemoteProtocolError(
      `${this.context.peer} sent more than ${this.#limits.maxHeaders} header fields`,
      {
        hop: this.context.hop,
        code: 'HEAD_TOO_LARGE',
        statusHint: 431,
      },
    );
  }
}

/** `text[from, to)` without the CR of its CRLF. */
function withoutCr(text: string, from: number, to: number): string {
  return text.slice(from, to > from && text.charCodeAt(to - 1) === CR ? to - 1 : to);
}

/** The index just past the blank line that ends a head in `buf[from, len)`, or -1. CRLF and bare LF alike. */
function endOfHead(buf: Uint8Array, from: number, len: number): number {
  for (let i = buf.indexOf(LF, from); i >= 0 && i < len; i = buf.indexOf(LF, i + 1)) {
    if (i + 1 < len && buf[i + 1] === LF) return i + 2;
    if (i + 2 < len && buf[i + 1] === CR && buf[i + 2] === LF) return i + 3;
  }
  return -1;
}

/** Strips optional whitespace (OWS: SP and HTAB, RFC 9110 §5.6.3) from both ends. */
function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

function parseVersion(v: string): HttpVersion | undefined {
  if (v === 'HTTP/1.1') return '1.1';
  if (v === 'HTTP/1.0') return '1.0';
  return undefined;
}

/** Reads a response head, as a client of a proxy or a server does. */
export class ResponseHeadReader extends HeadReader<ResponseHead> {
  protected checkPrefix(start: Uint8Array): void {
    for (let i = 0; i < Math.min(start.length, STATUS_LINE_PREFIX.length); i++) {
      if (!(STATUS_LINE_PREFIX[i] as (c: number) => boolean)(start[i] as number)) {
        const hint =
          start[0] === 0x16
            ? 'the peer answered with TLS: use an https:// URL for it'
            : 'the peer is not an HTTP server, or not the kind expected here';
        throw this.protocolError(`bytes that are not an HTTP response (${printable(start, 16)})`, hint);
      }
    }
  }

  protected parseStartLine(line: string): Omit<ResponseHead, 'headers'> {
    // status-line = HTTP-version SP status-code SP [ reason-phrase ]   (RFC 9112 §4)
    const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(line);
    const version = m?.[1] === undefined ? undefined : parseVersion(m[1]);
    // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): no controls, which would reach the terminal in errors.
    if (!m || version === undefined || !isValidFieldValue(m[3] ?? '')) {
      throw this.protocolError(`an invalid status line ${JSON.stringify(line.slice(0, 80))}`);
    }
    return { kind: 'response', version, status: Number(m[2]), reason: m[3] ?? '' };
  }
}

/** Reads a request head, as a proxy or a server does. */
export class RequestHeadReader extends HeadReader<RequestHead> {
  protected checkPrefix(start: Uint8Array): void {
    // A method is a token; the first byte that is neither a token character nor SP proves garbage
    // (a TLS ClientHello starts with 0x16, for instance).
    for (let i = 0; i < start.length; i++) {
      const c = start[i] as number;
      if (c === SP) return;
      if (!isTokenChar(c)) {
        const hint = start[0] === 0x16 ? 'the client speaks TLS to a plain HTTP port' : undefined;
        throw this.protocolError(`bytes that are not an HTTP request (${printable(start, 16)})`, hint);
      }
    }
  }

  protected parseStartLine(line: string): Omit<RequestHead, 'headers'> {
    // request-line = method SP request-target SP HTTP-version   (RFC 9112 §3)
    const sp1 = line.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
    const method = line.slice(0, sp1);
    const target = line.slice(sp1 + 1, sp2);
    const version = sp2 < 0 ? undefined : parseVersion(line.slice(sp2 + 1));
    if (sp2 < 0 || !isToken(method) || target === '' || version === undefined) {
      throw this.protocolError(`an invalid request line ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (/[\0-\x20\x7f]/.test(target)) throw this.protocolError('a request-target with control characters');
    return { kind: 'request', method, target, version };
  }
}

/** Renders bytes for an error message: printable ASCII as is, the rest as \xNN, cut at `max` bytes. */
export function printable(bytes: Uint8Array, max: number): string {
  let out = '';
  for (let i = 0; i < Math.min(bytes.length, max); i++) {
    const c = bytes[i] as number;
    if (c === 0x0d) out += '\\r';
    else if (c === 0x0a) out += '\\n';
    else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
    else out += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return bytes.length > max ? `${out}...` : out;
}

/**
 * Serializes a head for the wire (CRLF line ends, fields in the given order). Names must be tokens and values
 * free of controls: a CR or LF from a caller's header (`--proxy-header`) would otherwise split the request and
 * inject fields, as node's own http module refuses with ERR_INVALID_CHAR. Throws INVALID_ARGUMENT.
 */
export function serializeHead(startLine: string, headers: HeaderList): Buffer {
  if (/[\0\r\n]|[^\0-\xff]/.test(startLine))
    throw invalidArgument(`invalid start line ${JSON.stringify(startLine)}`);
  let s = `${startLine}\r\n`;
  for (const [k, v] of headers) {
    if (!isToken(k)) throw invalidArgument(`invalid header name ${JSON.stringify(k)}`);
    // The head goes out as latin1: a character above U+00FF would be silently cut to its low byte.
    if (!isValidFieldValue(v) || /[^\0-\xff]/.test(v)) {
      // The value may be a secret (Proxy-Authorization): name the field only.
      throw invalidArgument(
        `invalid value for header ${k}`,
        'header values may not hold CR, LF or other controls',
      );
    }
    s += `${k}: ${v}\r\n`;
  }
  return Buffer.from(`${s}\r\n`, 'latin1');
}

/** The head as text for traces and transcripts. */
export function formatHead(head: Head): string {
  const start =
    head.kind === 'response'
      ? `HTTP/${head.version} ${head.status}${head.reason ? ` ${head.reason}` : ''}`
      : `${head.method} ${head.target} HTTP/${head.version}`;
  return [start, ...head.headers.map(([k, v]) => `${k}: ${v}`)].join('\n');
}
