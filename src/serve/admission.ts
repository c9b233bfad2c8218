/**
 * Admission limits, the same for every server: how many connections (or tunnels, or sessions) are open at once,
 * in all and per client address. A connection let in holds an {@link AdmissionSlot}; closing the slot is the only
 * way its count is given back, and closing twice gives back nothing more, so a handler can close it from every
 * path that ends the connection without counting which ran first (STYLE.md trap 16).
 */
import type { EventEmitter } from 'node:events';
import { CountsByKey } from '../observe/counts-by-key.js';
import { noteConnectionClosed, noteConnectionOpened } from './connection-watch.js';

/** Counts; 0 means no limit. */
export interface AdmissionLimits {
  /** Open at once, from all clients (503 + Retry-After beyond). */
  readonly maxConnections: number;
  /** Open at once from one client address (429 + Retry-After beyond). */
  readonly maxPerClient: number;
}

/**
 * On by default in every server: enough for any one honest client (a browser opens a handful; a NAT of a few
 * hundred users stays under it) and low enough that one address cannot take every slot or file descriptor.
 */
export const DEFAULT_ADMISSION: AdmissionLimits = { maxConnections: 10_000, maxPerClient: 500 };

/** Which limit refused a connection: also its metric label (`rate`: the gateway's rate-per-client). */
export type AdmissionRefusalReason = 'max_connections' | 'per_client' | 'rate';

/** A refusal, with what an HTTP server answers: 503 for the server's limit, 429 for the client's own. */
export class AdmissionRefusal {
  readonly status: 503 | 429;
  /** RFC 9110 §10.2.3: a slot comes back when any connection ends, so "soon"; a rate says when. */
  readonly headers: readonly (readonly [string, string])[];
  constructor(
    readonly reason: AdmissionRefusalReason,
    readonly limit: number,
    readonly open: number,
    readonly client: string,
    retryAfterSeconds = 1,
  ) {
    this.status = reason === 'max_connections' ? 503 : 429;
    this.headers = [['Retry-After', String(retryAfterSeconds)]];
  }

  /** One line for the client and the log, naming the limit and the flag that sets it. */
  describe(flags: { readonly maxConnections: string; readonly maxPerClient: string }): string {
    if (this.reason === 'rate')
      return `${this.client} opens connections faster than its limit (rate-per-client ${this.limit} a second)`;
    return this.reason === 'max_connections'
      ? `the server has ${this.open} connections open, its limit (${flags.maxConnections} ${this.limit})`
      : `${this.client} has ${this.open} connections open, its limit (${flags.maxPerClient} ${this.limit})`;
  }
}

/** One admitted connection's hold on the counts. */
export class AdmissionSlot {
  readonly #admission: Admission;
  readonly client: string;
  #open = true;

  /** @internal by {@link Admission.admit} only. */
  constructor(admission: Admission, client: string) {
    this.#admission = admission;
    this.client = client;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Gives the slot back; idempotent. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#admission.release(this);
  }
}

export class Admission {
  readonly #limits: () => AdmissionLimits;
  readonly #perClient = new CountsByKey();
  readonly #onChange: ((open: number) => void) | undefined;
  #open = 0;

  /**
   * @param limits the limits, or a function read at each admission (the gateway's reloadable snapshot).
   * @param onChange told the new total after every admission and release (a gauge).
   */
  constructor(limits: AdmissionLimits | (() => AdmissionLimits), onChange?: (open: number) => void) {
    this.#limits = typeof limits === 'function' ? limits : () => limits;
    this.#onChange = onChange;
  }

  /** Slots open now. */
  get open(): number {
    return this.#open;
  }

  /** Slots `client` holds now. */
  openFor(client: string): number {
    return this.#perClient.get(client);
  }

  /** A slot for `client`, or the limit that refuses it. */
  admit(client: string): AdmissionSlot | AdmissionRefusal {
    const l = this.#limits();
    if (l.maxConnections > 0 && this.#open >= l.maxConnections)
      return new AdmissionRefusal('max_connections', l.maxConnections, this.#open, client);
    const mine = this.#perClient.get(client);
    if (l.maxPerClient > 0 && mine >= l.maxPerClient)
      return new AdmissionRefusal('per_client', l.maxPerClient, mine, client);
    this.#open++;
    this.#perClient.add(client);
    noteConnectionOpened();
    this.#onChange?.(this.#open);
    return new AdmissionSlot(this, client);
  }

  /** @internal by {@link AdmissionSlot.close} only: the one place a count goes down. */
  release(slot: AdmissionSlot): void {
    this.#open--;
    this.#perClient.remove(slot.client);
    noteConnectionClosed();
    this.#onChange?.(this.#open);
  }
}

const HELD = Symbol('wsvia.admissionSlot');

interface Holder extends EventEmitter {
  [HELD]?: AdmissionSlot | undefined;
  readonly closed?: boolean;
}

function closeHeldSlot(this: Holder): void {
  this[HELD]?.close();
}

/**
 * Gives `slot` back when `socket` closes, whatever path closes it. One module-level handler and the slot kept on
 * the socket: no closure per connection, which would keep the whole setup scope (request head and all) alive for
 * as long as an idle tunnel lives.
 */
export function releaseOnClose(
  socket: EventEmitter & { readonly closed?: boolean },
  slot: AdmissionSlot,
): void {
  const holder = socket as Holder;
  holder[HELD] = slot;
  holder.on('close', closeHeldSlot);
  if (holder.closed === true) slot.close();
}

/**
 * Takes back the slot {@link releaseOnClose} put on `socket`, whose close then gives nothing back (its handler is
 * removed): for a connection that outlives its socket object (the native relays carry the slot, and the gateway's
 * gives it to the sockets it makes when it hands the connection back).
 */
export function takeHeldSlot(socket: EventEmitter): AdmissionSlot | undefined {
  const holder = socket as Holder;
  const slot = holder[HELD];
  holder[HELD] = undefined;
  holder.removeListener('close', closeHeldSlot);
  return slot;
}
