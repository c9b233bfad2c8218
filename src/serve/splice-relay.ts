/**
 * The zero-copy relay for raw TCP tunnels (issue 15): the native addon in native/splice moves the bytes of two
 * plain TCP sockets with splice(2) (socket -> pipe -> socket, never through user space) on one relay thread, and
 * carries half-closes and resets as the JavaScript relay does. This module loads it (a local build first, then the
 * prebuilt binary for this platform), says why when it cannot, and hands sockets over to it.
 *
 * A handover stops Node's reads, and the caller first writes on what Node had already read and waits for every
 * pending write to be flushed; then the addon dup()s the two fds and the JavaScript sockets are destroyed, which
 * sends nothing (the connection lives on in the dup). The sockets' `close` listeners (an admission slot given back,
 * for one) are kept and run when the native relay ends, so whoever waited for the connection to close still does.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { isSea } from 'node:sea';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { takeHeldSlot, type AdmissionSlot } from './admission.js';

/** Which relay a server uses for raw tunnels: `auto` splices where it can and relays in JavaScript elsewhere. */
export const RELAY_CHOICES = ['js', 'splice', 'auto'] as const;
export type RelayChoice = (typeof RELAY_CHOICES)[number];

/** How a spliced relay ended, from the addon. `first` is the side ('a' | 'b') whose FIN or reset came first. */
export interface SpliceEnd {
  readonly bytesAtoB: number;
  readonly bytesBtoA: number;
  readonly end: 'fin' | 'reset' | 'error' | 'cut';
  readonly first: 'a' | 'b' | '';
  readonly firstReset: boolean;
}

/**
 * What the native WebSocket relay hands back (the gateway's, side a the client, side b the upstream): the two fds,
 * now JavaScript's, why, an errno a syscall got on a side (0: none), and per direction the bytes read and not yet
 * written, of which the first `scanned` were scanned; the scanner stands `remaining` payload bytes before the next
 * frame header there. Byte counts are what was written.
 */
export interface WsHandback {
  readonly fdA: number;
  readonly fdB: number;
  readonly why: 'control' | 'broken' | 'hangup' | 'error' | 'release';
  readonly errA: number;
  readonly errB: number;
  readonly dataAtoB: Buffer;
  readonly scannedAtoB: number;
  readonly remainingAtoB: number;
  readonly dataBtoA: Buffer;
  readonly scannedBtoA: number;
  readonly remainingBtoA: number;
  readonly bytesAtoB: number;
  readonly bytesBtoA: number;
}

interface Addon extends Partial<NativeDialer> {
  relay(fdA: number, fdB: number, counts: Float64Array, callback: (e: SpliceEnd) => void): number;
  cut(id: number): void;
  openCount(): number;
  wsRelay?(
    fdA: number,
    fdB: number,
    state: Float64Array,
    counts: Float64Array,
    callback: (h: WsHandback) => void,
  ): number;
  release?(id: number): void;
}

/**
 * The addon's dialer (native/splice/dial.c): a non-blocking connect watched on Node's loop, no socket object.
 * `dial` returns a handle, or -errno when the connect failed at once (no callback then); the callback gets 0 and a
 * connected fd (the caller's to hand over and close), or an errno and -1. `cancelDial` before the callback closes
 * the fd and stops it coming.
 */
export interface NativeDialer {
  dial(address: string, port: number, callback: (errno: number, fd: number) => void): object | number;
  cancelDial(handle: object): void;
}

/** Whether the native relay can run in this process, and if not, why (for the startup line and errors). */
export type SpliceSupport =
  | { readonly available: true; readonly from: string }
  | { readonly available: false; readonly reason: string };

/** The package root: this file is dist/src/serve/splice-relay.js. Made only when loading: in the single
 * executable's bundle `import.meta.url` does not exist. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
}

let addon: Addon | undefined;
let support: SpliceSupport | undefined;

function load(): SpliceSupport {
  if (process.platform !== 'linux') return { available: false, reason: 'splice(2) is Linux only' };
  if (process.env.WSVIA_SPLICE === 'off')
    return { available: false, reason: 'turned off by WSVIA_SPLICE=off' };
  if (isSea()) return { available: false, reason: 'the single executable carries no native addon' };
  const ROOT = packageRoot();
  const LOCAL_BUILD = path.join(ROOT, 'native/splice/build/Release/wsvia_splice.node');
  const require = createRequire(import.meta.url);
  try {
    // A build from source (npm install, or `node-gyp rebuild` in native/splice) wins over the prebuilt binary.
    if (fs.existsSync(LOCAL_BUILD)) {
      addon = require(LOCAL_BUILD) as Addon;
      return { available: true, from: 'native/splice/build' };
    }
    const gypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    const file = gypBuild.resolve(ROOT);
    addon = require(file) as Addon;
    return { available: true, from: path.relative(ROOT, file) };
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { available: false, reason: `the native relay did not load (${why})` };
  }
}

/** Loads the addon once; later calls give the same answer. */
export function spliceSupport(): SpliceSupport {
  support ??= load();
  return support;
}

/** Spliced relays still open (tests: every fd is given back once this is 0). */
export function splicedOpen(): number {
  return addon?.openCount() ?? 0;
}

/** The native WebSocket relay's entry points, when the loaded addon has them. */
export function wsRelayAddon(): Required<Pick<Addon, 'wsRelay' | 'release'>> | undefined {
  if (!spliceSupport().available) return undefined;
  const a = addon;
  if (a?.wsRelay === undefined || a.release === undefined) return undefined;
  return { wsRelay: a.wsRelay.bind(a), release: a.release.bind(a) };
}

/** The native dialer, when the loaded addon has it (WSVIA_NATIVE_DIAL=off: never). */
export function nativeDialer(): NativeDialer | undefined {
  if (!spliceSupport().available || process.env.WSVIA_NATIVE_DIAL === 'off') return undefined;
  const a = addon;
  if (a?.dial === undefined || a.cancelDial === undefined) return undefined;
  return { dial: a.dial.bind(a), cancelDial: a.cancelDial.bind(a) };
}

/** The fd under a plain TCP socket ({@link spliceable} ones have one). */
export function fdOf(s: net.Socket): number {
  return handleOf(s)?.fd ?? -1;
}

interface TcpHandle {
  fd?: number;
  reading?: boolean;
  readStop?(): number;
}

function handleOf(s: net.Socket): TcpHandle | undefined {
  return (s as net.Socket & { _handle?: TcpHandle | null })._handle ?? undefined;
}

/**
 * True for a plain TCP socket the native relay can take now: connected, its own fd, nothing ended or failed yet.
 * A TLS socket (bytes to decrypt) or any other stream stays with the JavaScript relay.
 */
export function spliceable(s: Duplex): s is net.Socket {
  if (!(s instanceof net.Socket) || s instanceof tls.TLSSocket) return false;
  const fd = handleOf(s)?.fd;
  return (
    typeof fd === 'number' &&
    fd >= 0 &&
    !s.connecting &&
    !s.destroyed &&
    !s.writableEnded &&
    s.errored === null &&
    s.readyState === 'open'
  );
}

/** Stops Node's reads on `s` (the kernel keeps what comes next, for the splice) and returns what Node had read. */
export function stopReads(s: net.Socket): Buffer[] {
  s.pause();
  const chunks: Buffer[] = [];
  for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) chunks.push(c);
  // read() may have restarted the handle's reads: stop them again before the event loop can deliver any.
  const h = handleOf(s);
  if (h?.readStop !== undefined) {
    h.reading = false;
    h.readStop();
  }
  return chunks;
}

/** Undoes {@link stopReads} for a socket that stays with JavaScript after all. */
export function restartReads(s: net.Socket): void {
  const h = handleOf(s) as (TcpHandle & { readStart?(): number }) | undefined;
  if (h?.readStart === undefined || h.reading === true) return;
  h.reading = true;
  h.readStart();
}

type Listener = (...args: unknown[]) => void;

/**
 * Two sockets now relayed by the addon; their admission slots and `close` listeners wait for its end. A socket
 * object is kept only for listeners of its own: an idle spliced tunnel holds none (a proxy's tunnel has only its
 * slot's).
 */
export class SplicedPair {
  /** Bytes a -> b and b -> a so far, kept up to date by the relay thread. */
  readonly counts = new Float64Array(2);
  readonly #id: number;
  readonly #deferred: [net.Socket, Listener[]][] = [];
  readonly #slots: AdmissionSlot[] = [];

  /**
   * Hands `a` and `b` (both {@link spliceable}, reads stopped, writes flushed) to the addon. Throws if it refuses
   * them; the sockets are then untouched. `b` may be a connected fd of the native dialer's instead: the addon
   * takes a copy, and this one is closed once it did.
   */
  constructor(a: net.Socket, b: net.Socket | number, onEnd: (e: SpliceEnd) => void) {
    const native = addon;
    if (native === undefined) throw new Error('the native relay is not loaded');
    const fdA = handleOf(a)?.fd ?? -1;
    const fdB = typeof b === 'number' ? b : (handleOf(b)?.fd ?? -1);
    this.#id = native.relay(fdA, fdB, this.counts, onEnd);
    if (typeof b === 'number') fs.closeSync(b);
    for (const s of typeof b === 'number' ? [a] : [a, b]) {
      const slot = takeHeldSlot(s);
      if (slot !== undefined) this.#slots.push(slot);
      const listeners = s.rawListeners('close') as Listener[];
      s.removeAllListeners('close');
      // Closing our handle closes one of two fds for the connection: no FIN, no RST.
      s.on('error', ignore);
      s.destroy();
      if (listeners.length > 0) this.#deferred.push([s, listeners]);
    }
  }

  /** Resets both sides; the end comes through `onEnd` as 'cut'. */
  cut(): void {
    addon?.cut(this.#id);
  }

  /** Runs the sockets' `close` listeners and gives their slots back, as their close would have. */
  closed(hadError: boolean): void {
    for (const [s, listeners] of this.#deferred) for (const l of listeners) l.call(s, hadError);
    this.#deferred.length = 0;
    for (const slot of this.#slots) slot.close();
    this.#slots.length = 0;
  }
}

function ignore(): void {}

/** Which relay a server's plain TCP tunnels get under `choice`, and why (the startup line says both). */
export function relayDecision(
  choice: RelayChoice,
  tlsListener: boolean,
): { readonly relay: 'js' | 'splice'; readonly why: string } {
  if (choice === 'js') return { relay: 'js', why: '--relay js' };
  if (tlsListener) return { relay: 'js', why: 'the listener is TLS: its bytes are decrypted in JavaScript' };
  const s = spliceSupport();
  if (!s.available) return { relay: 'js', why: s.reason };
  return { relay: 'splice', why: `zero-copy splice(2), ${s.from}` };
}
