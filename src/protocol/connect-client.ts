/**
 * The client side of an HTTP CONNECT exchange (RFC 9110 §9.3.6), sans-I/O: build the request, then feed the
 * proxy's bytes until the answer is known.
 *
 * - Any 2xx opens the tunnel, HTTP/1.0 or 1.1 (curl accepts any 2xx too; https-proxy-agent's `=== 200` is the trap).
 * - Bytes after the 2xx head belong to the tunnel and come back as `leftover`.
 * - A refusal's body is read to its end (bounded), so a 407 can be answered on the same connection when the proxy
 *   keeps it open; an excerpt is kept for the error message.
 * - 1xx interim responses are skipped.
 */
import { WsviaError } from '../errors.js';
import { formatAuthority, type Authority } from './authority.js';
import { BodyExcerpt, BodyTracker, framingForbidsReuse, responseFraming } from './body.js';
import { getHeader, hasToken, type HeaderList } from './headers.js';
import {
  DEFAULT_HEAD_LIMITS,
  ResponseHeadReader,
  serializeHead,
  type HeadLimits,
  type ResponseHead,
} from './head.js';

export type ConnectResult =
  | { readonly kind: 'tunnel'; readonly head: ResponseHead; readonly leftover: Uint8Array }
  | {
      readonly kind: 'rejected';
      readonly head: ResponseHead;
      readonly bodyExcerpt: string;
      /** The proxy keeps the connection open and the body was read whole: a retry may use the same connection. */
      readonly reusable: boolean;
    };

export const USER_AGENT = 'wsvia/0.1';

/** The CONNECT request head. `headers` come after Host, in order (Proxy-Authorization, the user's headers). */
export function buildConnectRequest(target: Authority, headers: HeaderList = []): Buffer {
  const authority = formatAuthority(target);
  const all: [string, string][] = [['Host', authority]];
  if (!headers.some(([k]) => k.toLowerCase() === 'user-agent')) all.push(['User-Agent', USER_AGENT]);
  for (const [k, v] of headers) if (k.toLowerCase() !== 'host') all.push([k, v]);
  return serializeHead(`CONNECT ${authority} HTTP/1.1`, all);
}

/** Whether the proxy will keep the connection after this response (RFC 9112 §9.3). */
export function isPersistent(head: ResponseHead): boolean {
  const h = head.headers;
  if (hasToken(h, 'connection', 'close') || hasToken(h, 'proxy-connection', 'close')) return false;
  if (head.version === '1.1') return true;
  return hasToken(h, 'connection', 'keep-alive') || hasToken(h, 'proxy-connection', 'keep-alive');
}

/** Largest refusal body read to keep the connection for a retry; a larger one is abandoned with the connection. */
const MAX_REJECTION_BODY = 64 * 1024;

export class ConnectClient {
  readonly #peer: string;
  readonly #limits: HeadLimits;
  #reader: ResponseHeadReader;
  #head: ResponseHead | undefined;
  #body: BodyTracker | undefined;
  #bodyBytes = 0;
  readonly #excerpt = new BodyExcerpt(200);
  #result: ConnectResult | undefined;

  /** `peer` names the proxy in errors, e.g. `proxy http://p:3128`. */
  constructor(peer: string, limits: HeadLimits = DEFAULT_HEAD_LIMITS) {
    this.#peer = peer;
    this.#limits = limits;
    this.#reader = new ResponseHeadReader({ peer, hop: 'proxy' }, limits);
  }

  /** The response head once read (also while the refusal body is still arriving). */
  get head(): ResponseHead | undefined {
    return this.#head;
  }

  /** Feed the proxy's bytes; returns the result once known. Throws a WsviaError on malformed input. */
  receive(chunk: Uint8Array): ConnectResult | undefined {
    if (this.#result) throw new Error('ConnectClient: result already returned');
    let data = chunk;
    while (this.#head === undefined) {
      const r = this.#reader.receive(data);
      if (!r) return undefined;
      if (r.head.status >= 100 && r.head.status < 200) {
        // Interim response: discard it and read the next head from what followed.
        this.#reader = new ResponseHeadReader({ peer: this.#peer, hop: 'proxy' }, this.#limits);
        data = r.leftover;
        if (data.length === 0) return undefined;
        continue;
      }
      this.#head = r.head;
      if (r.head.status >= 200 && r.head.status < 300) {
        return (this.#result = { kind: 'tunnel', head: r.head, leftover: r.leftover });
      }
      this.#body = new BodyTracker(responseFraming(r.head, 'CONNECT', this.#peer, 'proxy'), {
        peer: this.#peer,
        hop: 'proxy',
        onPayload: (b) => this.#excerpt.add(b),
      });
      data = r.leftover;
      // Bytes after an empty body are not a response we asked for: the connection cannot be trusted for a retry.
      if (this.#body.done) return this.#reject(data.length === 0);
    }
    const body = this.#body as BodyTracker;
    const step = body.receive(data);
    this.#bodyBytes += step.body.length;
    if (step.done) return this.#reject(step.leftover.length === 0);
    if (this.#bodyBytes > MAX_REJECTION_BODY) return this.#reject(false);
    return undefined;
  }

  /** The proxy closed its side. Returns the refusal if its head was read; otherwise the close is the error. */
  receiveEof(): ConnectResult {
    if (this.#result) return this.#result;
    if (this.#head) return this.#reject(false);
    const got = this.#reader.received;
    throw new WsviaError(
      'CONNECTION_RESET',
      got.length === 0
        ? `${this.#peer} closed the connection without answering CONNECT`
        : `${this.#peer} closed the connection in the middle of its answer to CONNECT`,
      {
        hop: 'proxy',
        hint: 'the proxy may refuse this client or destination silently, or be overloaded; check its logs',
        details: { receivedBytes: got.length },
      },
    );
  }

  #reject(bodyComplete: boolean): ConnectResult {
    const head = this.#head as ResponseHead;
    return (this.#result = {
      kind: 'rejected',
      head,
      bodyExcerpt: this.#excerpt.text(),
      reusable:
        bodyComplete && (this.#body?.done ?? false) && isPersistent(head) && !framingForbidsReuse(head),
    });
  }
}

/** The response's fields worth showing in an error: what identifies the answering box and why it refused. */
export function selectedHeaders(head: ResponseHead): [string, string][] {
  const keep = [
    'server',
    'via',
    'proxy-authenticate',
    'proxy-status',
    'x-squid-error',
    'x-wsvia-error',
    'retry-after',
  ];
  return head.headers.filter(([k]) => keep.includes(k.toLowerCase())).map(([k, v]) => [k, v]);
}

export function retryAfterSeconds(head: ResponseHead): number | undefined {
  const v = getHeader(head.headers, 'retry-after');
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}
