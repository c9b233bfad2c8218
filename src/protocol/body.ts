/**
 * Message body framing (RFC 9112 §6), sans-I/O. Decides how a body ends, then tracks it through the bytes so a
 * connection can be reused after it (a 407 answered on the same connection) or a relay knows where the next
 * message starts. Bytes are passed through untouched (chunked framing included); the decoded payload is offered
 * on the side for those who want an excerpt.
 */
import { RemoteProtocolError, type Hop } from '../errors.js';
import { getHeaderValues, headerTokens, type HeaderList } from './headers.js';
import type { RequestHead, ResponseHead } from './head.js';

export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Read until the connection closes (a response without length, RFC 9112 §6.3 rule 8). */
  | { readonly kind: 'close' };

function contentLength(headers: HeaderList, peer: string, hop: Hop): number | undefined {
  const values = getHeaderValues(headers, 'content-length').flatMap((v) => v.split(',').map((x) => x.trim()));
  if (values.length === 0) return undefined;
  const first = values[0] as string;
  // RFC 9110 §8.6: a list of identical values may be treated as one; differing values are an error.
  if (!/^\d{1,15}$/.test(first) || values.some((v) => v !== first)) {
    throw new RemoteProtocolError(
      `${peer} sent an invalid Content-Length ${JSON.stringify(values.join(', '))}`,
      { hop },
    );
  }
  return Number(first);
}

/** How a response body is framed, given the request method it answers (RFC 9112 §6.3). */
export function responseFraming(
  head: ResponseHead,
  requestMethod: string,
  peer: string,
  hop: Hop,
): BodyFraming {
  const s = head.status;
  if (requestMethod === 'HEAD' || (s >= 100 && s < 200) || s === 204 || s === 304) return { kind: 'none' };
  if (requestMethod === 'CONNECT' && s >= 200 && s < 300) return { kind: 'none' };
  const te = headerTokens(head.headers, 'transfer-encoding');
  if (te.length > 0) return te[te.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  const length = contentLength(head.headers, peer, hop);
  return length === undefined ? { kind: 'close' } : { kind: 'length', length };
}

/**
 * Whether a response's framing is too doubtful to read another message after it on the same connection:
 * Transfer-Encoding with Content-Length (RFC 9112 §6.3 rule 3, "ought to be handled as an error"), or
 * Transfer-Encoding in HTTP/1.0 (§6.1: "treat the message as if the framing is faulty ... and close the connection").
 */
export function framingForbidsReuse(head: ResponseHead): boolean {
  if (headerTokens(head.headers, 'transfer-encoding').length === 0) return false;
  return head.version === '1.0' || getHeaderValues(head.headers, 'content-length').length > 0;
}

/**
 * Fields that no hop may drop: they frame the message or name its target. A Connection header naming one (RFC
 * 9110 §7.6.1) asks each intermediary to remove it, yet the body it framed still travels on, and the next hop
 * reads that body as a request of its own (request smuggling). Such a request is refused instead.
 */
export const END_TO_END_FIELDS = ['content-length', 'transfer-encoding', 'host'] as const;

/** Refuses a request whose Connection header names a field in {@link END_TO_END_FIELDS}. */
export function checkConnectionOptions(head: RequestHead, peer: string): void {
  const named = headerTokens(head.headers, 'connection').filter((t) =>
    (END_TO_END_FIELDS as readonly string[]).includes(t),
  );
  if (named.length > 0)
    throw new RemoteProtocolError(`${peer} sent a Connection header naming ${named.join(', ')}`, {
      hop: 'server',
      hint: 'Connection lists hop-by-hop options (keep-alive, close, upgrade), never the fields that frame a request',
    });
}

/**
 * How a request body is framed (RFC 9112 §6.3): without Content-Length or chunked, there is none. Every server
 * reading requests asks this first, so the refusals here (including {@link checkConnectionOptions}) hold for all.
 */
export function requestFraming(head: RequestHead, peer: string): BodyFraming {
  checkConnectionOptions(head, peer);
  const te = headerTokens(head.headers, 'transfer-encoding');
  if (te.length > 0) {
    // A request whose final coding is not chunked cannot be framed (RFC 9112 §6.3 rule 4): 400. Chunked may be
    // applied once only (§7), and an HTTP/1.0 message with Transfer-Encoding has faulty framing (§6.1).
    if (
      te[te.length - 1] !== 'chunked' ||
      te.indexOf('chunked') !== te.length - 1 ||
      head.version === '1.0'
    ) {
      throw new RemoteProtocolError(`${peer} sent a request with Transfer-Encoding ${te.join(', ')}`, {
        hop: 'server',
      });
    }
    // TE and CL together are a smuggling vector (RFC 9112 §6.1): refuse rather than guess.
    if (getHeaderValues(head.headers, 'content-length').length > 0) {
      throw new RemoteProtocolError(`${peer} sent both Transfer-Encoding and Content-Length`, {
        hop: 'server',
      });
    }
    return { kind: 'chunked' };
  }
  const length = contentLength(head.headers, peer, 'server');
  return length === undefined || length === 0 ? { kind: 'none' } : { kind: 'length', length };
}

export interface BodyStep {
  /** The body's raw bytes in this chunk (a view, not a copy). */
  readonly body: Uint8Array;
  /** True once the body is complete. */
  readonly done: boolean;
  /** Bytes after the end of the body, when done. */
  readonly leftover: Uint8Array;
}

const EMPTY = new Uint8Array(0);
type ChunkState =
  | 'size'
  | 'size-bws'
  | 'size-ext'
  | 'size-lf'
  | 'data'
  | 'data-cr'
  | 'data-lf'
  | 'trailer'
  | 'trailer-lf'
  | 'done';

/**
 * Follows a body through the bytes. `onPayload` receives the decoded payload (chunk framing removed).
 * Chunk sizes are limited to 15 hex digits and trailer lines to `maxLineBytes`, so a hostile peer cannot make it
 * accumulate anything: it keeps no buffer at all.
 */
export class BodyTracker {
  readonly #framing: BodyFraming;
  readonly #onPayload: ((bytes: Uint8Array) => void) | undefined;
  readonly #peer: string;
  readonly #hop: Hop;
  #remaining: number;
  #state: ChunkState = 'size';
  #sizeDigits = 0;
  #lineBytes = 0;
  #done: boolean;

  constructor(
    framing: BodyFraming,
    options: { peer: string; hop: Hop; onPayload?: (bytes: Uint8Array) => void },
  ) {
    this.#framing = framing;
    this.#onPayload = options.onPayload;
    this.#peer = options.peer;
    this.#hop = options.hop;
    this.#remaining = framing.kind === 'length' ? framing.length : 0;
    this.#done = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0);
  }

  get done(): boolean {
    return this.#done;
  }

  /** The connection closed. For `close` framing that ends the body; otherwise the body was cut short. */
  receiveEof(): void {
    if (this.#framing.kind === 'close') this.#done = true;
    if (!this.#done) {
      throw new RemoteProtocolError(`${this.#peer} closed the connection in the middle of a message body`, {
        hop: this.#hop,
        code: 'CONNECTION_RESET',
      });
    }
  }

  receive(chunk: Uint8Array): BodyStep {
    if (this.#done) return { body: EMPTY, done: true, leftover: chunk };
    switch (this.#framing.kind) {
      case 'none':
        return { body: EMPTY, done: true, leftover: chunk };
      case 'close':
        this.#onPayload?.(chunk);
        return { body: chunk, done: false, leftover: EMPTY };
      case 'length': {
        const take = Math.min(this.#remaining, chunk.length);
        this.#remaining -= take;
        const body = chunk.subarray(0, take);
        this.#onPayload?.(body);
        this.#done = this.#remaining === 0;
        return { body, done: this.#done, leftover: this.#done ? chunk.subarray(take) : EMPTY };
      }
      case 'chunked':
        return this.#receiveChunked(chunk);
    }
  }

  #fail(what: string): never {
    throw new RemoteProtocolError(`${this.#peer} sent a malformed chunked body (${what})`, {
      hop: this.#hop,
    });
  }

  // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk then trailer section.
  #receiveChunked(chunk: Uint8Array): BodyStep {
    let i = 0;
    while (i < chunk.length && this.#state !== 'done') {
      const c = chunk[i] as number;
      switch (this.#state) {
        case 'size':
          if (isHex(c)) {
            // Stay within exact integer arithmetic (2^52 - 1): past it, sizes would round and the framing drift.
            if (++this.#sizeDigits > 15 || this.#remaining > MAX_CHUNK_SIZE_PREFIX)
              this.#fail('chunk size too large');
            this.#remaining = this.#remaining * 16 + parseInt(String.fromCharCode(c), 16);
            i++;
          } else if (this.#sizeDigits === 0) {
            this.#fail('missing chunk size');
          } else if (c === 0x3b) {
            this.#state = 'size-ext';
          } else if (c === 0x20 || c === 0x09) {
            this.#state = 'size-bws';
          } else if (c === 0x0d) {
            this.#state = 'size-lf';
            i++;
          } else if (c === 0x0a) {
            this.#endSizeLine();
            i++;
          } else this.#fail('bad chunk size');
          break;
        case 'size-bws':
          // chunk-ext = *( BWS ";" ... ) (RFC 9112 §7.1.1): after the size, only whitespace, then `;` or the line end.
          // Anything else (`5 6`) is a size other parsers may read differently: refuse it.
          if (c === 0x3b) this.#state = 'size-ext';
          else if (c === 0x0d) this.#state = 'size-lf';
          else if (c === 0x0a) this.#endSizeLine();
          else if (c !== 0x20 && c !== 0x09) this.#fail('bad chunk size');
          i++;
          break;
        case 'size-ext':
          if (++this.#lineBytes > 4096) this.#fail('chunk extension too long');
          if (c === 0x0d) this.#state = 'size-lf';
          else if (c === 0x0a) this.#endSizeLine();
          i++;
          break;
        case 'size-lf':
          if (c !== 0x0a) this.#fail('CR without LF');
          this.#endSizeLine();
          i++;
          break;
        case 'data': {
          const take = Math.min(this.#remaining, chunk.length - i);
          this.#onPayload?.(chunk.subarray(i, i + take));
          this.#remaining -= take;
          i += take;
          if (this.#remaining === 0) this.#state = 'data-cr';
          break;
        }
        case 'data-cr':
          if (c === 0x0d) this.#state = 'data-lf';
          else if (c === 0x0a) this.#nextChunk();
          else this.#fail('missing CRLF after chunk data');
          i++;
          break;
        case 'data-lf':
          if (c !== 0x0a) this.#fail('CR without LF');
          this.#nextChunk();
          i++;
          break;
        case 'trailer':
          // Trailer fields are skipped; an empty line ends the message.
          if (c === 0x0d) {
            this.#state = 'trailer-lf';
          } else if (c === 0x0a) {
            if (this.#lineBytes === 0) this.#state = 'done';
            this.#lineBytes = 0;
          } else if (++this.#lineBytes > 4096) this.#fail('trailer line too long');
          i++;
          break;
        case 'trailer-lf':
          if (c !== 0x0a) this.#fail('CR without LF');
          if (this.#lineBytes === 0) this.#state = 'done';
          else this.#state = 'trailer';
          this.#lineBytes = 0;
          i++;
          break;
      }
    }
    if (this.#state === 'done') {
      this.#done = true;
      return { body: chunk.subarray(0, i), done: true, leftover: chunk.subarray(i) };
    }
    return { body: chunk, done: false, leftover: EMPTY };
  }

  #endSizeLine(): void {
    this.#lineBytes = 0;
    this.#sizeDigits = 0;
    this.#state = this.#remaining === 0 ? 'trailer' : 'data';
  }

  #nextChunk(): void {
    this.#state = 'size';
    this.#remaining = 0;
  }
}

/** Largest value that may take one more hex digit and stay at most 2^52 - 1. */
const MAX_CHUNK_SIZE_PREFIX = 0xffffffffffff;

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * A short printable excerpt of a body for error messages: HTML tags and scripts dropped, whitespace folded,
 * cut at `max` characters. Keeps at most 16 KiB while collecting: error pages often open with a large <style>.
 */
const MAX_EXCERPT_SOURCE = 16 * 1024;

export class BodyExcerpt {
  readonly #max: number;
  readonly #parts: Uint8Array[] = [];
  #size = 0;

  constructor(max = 200) {
    this.#max = max;
  }

  add(bytes: Uint8Array): void {
    const room = MAX_EXCERPT_SOURCE - this.#size;
    if (room <= 0) return;
    const part = bytes.subarray(0, room);
    this.#parts.push(Uint8Array.from(part));
    this.#size += part.length;
  }

  text(): string {
    return excerptText(Buffer.concat(this.#parts).toString('utf8'), this.#max);
  }
}

export function excerptText(raw: string, max = 200): string {
  const text = raw
    .replace(/<(script|style)\b[\s\S]*?(<\/\1>|$)/gi, ' ')
    // Only what looks like a tag or comment: a bare `<` in prose ("quota < limit") is text, not the start of a tag
    // that eats the rest of the excerpt.
    .replace(/<!--[\s\S]*?(-->|$)|<\/?[A-Za-z!?][^<>]*>?/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/[^\P{C}\n\t]/gu, '')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
