/**
 * The one way a server opens a connection on a client's behalf: the proxy's CONNECT and absolute-form requests, the
 * bridge's targets (`--target`, `--allow-target`, tokens) and the gateway's SNI passthrough. Resolve the name once,
 * check every address it resolved to, refuse the name if any address is denied (a name that resolves to a public
 * and a private address is the textbook rebinding setup, and which one a client lands on must not depend on the
 * resolver's order), then connect only to an address that was checked: no second lookup, so DNS rebinding cannot
 * slip a denied address in between. One deadline bounds all of it, the lookup, every connect attempt and a parent
 * proxy's TCP, TLS and CONNECT: an AbortSignal the caller makes once ({@link ConnectDeadline}) and passes down.
 */
import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import util from 'node:util';
import { isWsviaError, WsviaError, type Hop } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import type { AddressClass, AddressRules, DestinationVerdict } from '../route/destination.js';
import type { NativeDialer } from './splice-relay.js';

/** All the addresses of a name, in the resolver's order. */
export type HostLookup = (host: string) => Promise<readonly string[]>;

/** Opens a connection to one checked address (through a parent proxy, say); the signal is the connect's deadline. */
export type CheckedDialer = (
  address: string,
  port: number,
  signal: AbortSignal | undefined,
) => Promise<net.Socket>;

export interface GuardedConnectOptions {
  readonly rules: AddressRules;
  /** The deadline of the whole connect; undefined: no limit (or `timeout`). */
  readonly signal: AbortSignal | undefined;
  /**
   * Without a signal: the deadline of the whole connect in ms (0 or undefined: no limit). A direct connect to an IP
   * literal then runs on one plain timer, with no AbortController made for it (the proxy's setup path); a lookup or a
   * dialer gets a {@link ConnectDeadline} made here.
   */
  readonly timeout?: number | undefined;
  /** Default: the system resolver (`dns.lookup`, every address, IPv6 included, in the system's order). */
  readonly lookup?: HostLookup | undefined;
  /** Default: TCP straight to the address, half-open allowed, no delay, paused. */
  readonly dial?: CheckedDialer | undefined;
  /** For a direct connection: read into this buffer (the proxy's relay reuses one). */
  readonly onread?: net.OnReadOpts | undefined;
}

export interface GuardedConnection {
  /** Connected and paused, with no listeners of ours left on it. */
  readonly socket: net.Socket;
  /** The checked address it is connected to (through the parent proxy, the address asked of it). */
  readonly address: string;
}

/** A destination refused by the rules, before any connection to it. */
export class DestinationDeniedError extends WsviaError {
  constructor(
    where: string,
    /** The rule that denied, in the operator's words. */
    readonly rule: string,
    readonly addressClass: AddressClass | undefined,
  ) {
    super('DESTINATION_DENIED', `${where} is denied: ${rule}`, {
      hop: 'route',
      target: where,
      hint: "the server's destination rules refuse it",
      details: { rule, ...(addressClass === undefined ? {} : { addressClass }) },
    });
  }
}

/** The reason a {@link ConnectDeadline}'s signal aborts with: how long the connect was given. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
  constructor(readonly ms: number) {
    super(`deadline of ${ms} ms exceeded`);
  }
}

/** setTimeout fires at once beyond this (a 32-bit signed count of ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The one deadline of a connect, made once by the caller when the connect starts: `ms` for everything, 0 for no
 * limit (then `signal` is undefined). {@link clear} stops the clock once the connect settled.
 */
export class ConnectDeadline {
  readonly signal: AbortSignal | undefined;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(readonly ms: number) {
    if (!(ms > 0)) {
      this.signal = undefined;
      this.#timer = undefined;
      return;
    }
    const controller = new AbortController();
    this.signal = controller.signal;
    this.#timer = setTimeout(() => controller.abort(new DeadlineExceeded(ms)), Math.min(ms, MAX_TIMER_MS));
    this.#timer.unref();
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * Resolves `target` once, checks every address against `rules`, and connects to a checked one (the next checked
 * one when an address refuses). Throws {@link DestinationDeniedError}, or a WsviaError: DNS_FAILED, TCP_TIMEOUT
 * (the deadline, whichever step it cut), CONNECTION_REFUSED, CONNECTION_RESET, or what the dialer threw.
 *
 * @example
 * const deadline = new ConnectDeadline(10_000);
 * try {
 *   const { socket } = await guardedConnect({ host: 'example.com', port: 443 }, { rules, signal: deadline.signal });
 * } finally {
 *   deadline.clear();
 * }
 */
export async function guardedConnect(
  target: Authority,
  o: GuardedConnectOptions,
): Promise<GuardedConnection> {
  const dial = o.dial;
  const c = await guarded(target, o, dial !== undefined, (attempt, address) =>
    dial ? dial(address, target.port, attempt.signal) : attempt.connectDirect(address),
  );
  return { socket: c.value, address: c.address };
}

/** What {@link guardedDial} needs: {@link GuardedConnectOptions} less a dialer and a read buffer of its own. */
export type GuardedDialOptions = Omit<GuardedConnectOptions, 'dial' | 'onread'>;

/**
 * {@link guardedConnect} with the native dialer (serve/splice-relay.ts): the same rules, lookup, deadline and errors,
 * and a connected fd instead of a socket, for the splice relay to carry from the first byte. The fd is the
 * caller's to hand over and close.
 */
export async function guardedDial(
  target: Authority,
  o: GuardedDialOptions,
  dialer: NativeDialer,
): Promise<{ readonly fd: number; readonly address: string }> {
  const c = await guarded(target, o, false, (attempt, address) => attempt.dialNative(dialer, address));
  return { fd: c.value, address: c.address };
}

/**
 * Checks the name, resolves it once, checks every address, then connects to a checked one with `connect`. A
 * lookup or a dialer of the caller's runs under one {@link ConnectDeadline} made here.
 */
async function guarded<T>(
  target: Authority,
  o: GuardedConnectOptions,
  customDialer: boolean,
  connect: (attempt: ConnectAttempt, address: string) => Promise<T>,
): Promise<{ readonly value: T; readonly address: string }> {
  const literal = net.isIP(target.host) !== 0;
  if (o.signal === undefined && (o.timeout ?? 0) > 0 && (customDialer || !literal)) {
    const deadline = new ConnectDeadline(o.timeout ?? 0);
    try {
      return await guarded(
        target,
        { ...o, signal: deadline.signal, timeout: undefined },
        customDialer,
        connect,
      );
    } finally {
      deadline.clear();
    }
  }
  const attempt = new ConnectAttempt(target, o);
  // Rules that need no address are applied first: a denied name is never even resolved.
  attempt.check(o.rules.checkName(target.host, target.port));
  // An IP literal is its own address: no lookup, and no event-loop turn for one.
  const addresses = literal ? [target.host] : await attempt.resolveOnce();
  for (const address of addresses) attempt.check(o.rules.checkAddress(target.host, target.port, address));
  return attempt.connectChecked(addresses, connect);
}

async function systemLookup(host: string): Promise<readonly string[]> {
  // verbatim: keep the resolver's order (RFC 6724 as the system sorts), IPv6 included.
  const all = await dns.promises.lookup(host, { all: true, verbatim: true });
  return all.map((a) => a.address);
}

/** An address that failed this way may be down alone: the next checked address is tried. */
function nextAddressMayWork(e: unknown): boolean {
  return (
    isWsviaError(e) &&
    e.proxy === undefined &&
    (e.code === 'CONNECTION_REFUSED' || e.code === 'CONNECTION_RESET')
  );
}

/** One guarded connect: the target, its rules and its deadline, through each step. */
class ConnectAttempt {
  readonly #target: Authority;
  readonly #where: string;
  readonly #o: GuardedConnectOptions;

  constructor(target: Authority, o: GuardedConnectOptions) {
    this.#target = target;
    this.#where = formatAuthority(target);
    this.#o = o;
  }

  check(v: DestinationVerdict): void {
    if (!v.allowed) throw new DestinationDeniedError(this.#where, v.rule, v.addressClass);
  }

  async resolveOnce(): Promise<readonly string[]> {
    const host = this.#target.host;
    if (net.isIP(host) !== 0) return [host];
    const fields = { hop: 'dns' as const, target: this.#where, hint: 'check the host name' };
    let addresses: readonly string[];
    try {
      addresses = await untilAborted((this.#o.lookup ?? systemLookup)(host), this.#o.signal);
    } catch (e) {
      if (this.#o.signal?.aborted) throw this.#stopped('dns', `cannot resolve ${host}`);
      const code = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
      throw new WsviaError('DNS_FAILED', `cannot resolve ${host} (${code})`, { ...fields, cause: e });
    }
    if (addresses.length === 0)
      throw new WsviaError('DNS_FAILED', `cannot resolve ${host} (no address)`, fields);
    return addresses;
  }

  get signal(): AbortSignal | undefined {
    return this.#o.signal;
  }

  async connectChecked<T>(
    addresses: readonly string[],
    connect: (attempt: ConnectAttempt, address: string) => Promise<T>,
  ): Promise<{ readonly value: T; readonly address: string }> {
    const signal = this.#o.signal;
    let last: unknown;
    for (const address of addresses) {
      try {
        return { value: await connect(this, address), address };
      } catch (e) {
        if (signal?.aborted) throw this.#stopped('tcp', `no connection to ${this.#where}`);
        if (!nextAddressMayWork(e)) throw e;
        last = e;
      }
    }
    throw last;
  }

  /** TCP straight to `address`: half-open allowed, no delay, paused. */
  connectDirect(address: string): Promise<net.Socket> {
    return this.#withinDeadline<net.Socket>((done) => {
      const socket = net.connect({
        host: address,
        port: this.#target.port,
        allowHalfOpen: true,
        noDelay: true,
        ...(this.#o.onread && { onread: this.#o.onread }),
      });
      socket.pause();
      const onConnect = (): void => {
        socket.removeListener('error', onError);
        done(undefined, socket);
      };
      const onError = (e: NodeJS.ErrnoException): void => {
        socket.removeListener('connect', onConnect);
        socket.destroy();
        done(this.#connectError(e, address));
      };
      socket.once('connect', onConnect);
      socket.once('error', onError);
      return () => {
        socket.removeListener('connect', onConnect);
        socket.removeListener('error', onError);
        socket.destroy();
      };
    });
  }

  /** TCP to `address` by the native dialer: a connected fd, no socket object. */
  dialNative(dialer: NativeDialer, address: string): Promise<number> {
    const port = this.#target.port;
    return this.#withinDeadline<number>((done) => {
      const h = dialer.dial(address, port, (errno, fd) => {
        if (errno !== 0) return void done(this.#connectError(connectErrno(errno, address, port), address));
        // Settled meanwhile cannot happen (abandoning cancels the dial), but an fd is never left open.
        if (!done(undefined, fd)) fs.closeSync(fd);
      });
      if (typeof h === 'number') {
        done(this.#connectError(connectErrno(-h, address, port), address));
        return noop;
      }
      return () => dialer.cancelDial(h);
    });
  }

  /**
   * One connect within the attempt's deadline (its signal, or without one `timeout` on one plain timer): `begin`
   * starts it, calls `done` once with the outcome, and returns how to abandon it. `done` says whether the outcome
   * was taken (false once the deadline or an abort settled it).
   */
  #withinDeadline<T>(
    begin: (done: (e: WsviaError | undefined, value?: T) => boolean) => () => void,
  ): Promise<T> {
    const signal = this.#o.signal;
    if (signal?.aborted) return Promise.reject(this.#stopped('tcp', `no connection to ${this.#where}`));
    const ms = signal === undefined ? (this.#o.timeout ?? 0) : 0;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        return true;
      };
      const stop = (reason: unknown): void => {
        if (!settle()) return;
        abandon();
        reject(this.#stopped('tcp', `no connection to ${this.#where}`, reason));
      };
      const onAbort = (): void => stop(signal?.reason);
      const abandon = begin((e, value) => {
        if (!settle()) return false;
        if (e) reject(e);
        else resolve(value as T);
        return true;
      });
      if (settled) return;
      signal?.addEventListener('abort', onAbort, { once: true });
      if (ms > 0)
        timer = setTimeout(() => stop(new DeadlineExceeded(ms)), Math.min(ms, MAX_TIMER_MS)).unref();
    });
  }

  #connectError(e: NodeJS.ErrnoException, address: string): WsviaError {
    const where = this.#where;
    const at = net.isIP(this.#target.host) !== 0 ? where : `${where} (${address})`;
    const fields = { hop: 'tcp' as const, target: where, cause: e, details: { address, errno: e.code } };
    switch (e.code) {
      case 'ECONNREFUSED':
        return new WsviaError('CONNECTION_REFUSED', `${at} refused the connection`, {
          ...fields,
          hint: 'nothing listens there, or a firewall rejects it',
        });
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
      case 'EADDRNOTAVAIL':
        return new WsviaError('CONNECTION_REFUSED', `no route to ${at} (${e.code})`, fields);
      default:
        return new WsviaError(
          'CONNECTION_RESET',
          `connection to ${at} failed (${e.code ?? e.message})`,
          fields,
        );
    }
  }

  /** The error for a connect its deadline (or its owner) stopped during `hop`. */
  #stopped(hop: Hop, what: string, reason: unknown = this.#o.signal?.reason): WsviaError {
    const r = reason;
    const timedOut = r instanceof DeadlineExceeded || (r instanceof Error && r.name === 'TimeoutError');
    if (!timedOut)
      return new WsviaError('CONNECTION_RESET', `${what}: the connection attempt was abandoned`, {
        hop,
        target: this.#where,
        cause: r,
      });
    const within = r instanceof DeadlineExceeded ? `within ${r.ms} ms` : 'within the connect timeout';
    return new WsviaError('TCP_TIMEOUT', `${what} ${within}`, {
      hop,
      target: this.#where,
      hint:
        hop === 'dns'
          ? 'the resolver does not answer'
          : 'the host drops packets (a firewall), or is down, or the parent proxy is slow',
    });
  }
}

function noop(): void {}

/** The error a failed native connect stands for, as Node's `net` would have raised it. */
function connectErrno(errno: number, address: string, port: number): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(-errno);
  const e: NodeJS.ErrnoException = new Error(`connect ${code} ${address}:${port}`);
  e.code = code;
  e.errno = -errno;
  e.syscall = 'connect';
  return e;
}

/** `promise`, or a rejection as soon as `signal` aborts (the promise's own outcome is then ignored). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
