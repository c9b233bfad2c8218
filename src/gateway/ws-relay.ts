/**
 * The WebSocket relay after the 101: raw bytes both ways, never decoded, with backpressure (a side that does not
 * read pauses the other). This is what keeps the CPU per GB and the memory per idle WebSocket low: no frame is
 * parsed into a message, no payload copied or unmasked, and an idle WebSocket holds two sockets and this object.
 *
 * A {@link FrameScanner} per direction follows the frame headers so the gateway can speak in the stream when it
 * must: a ping injected between two frames (RFC 6455 §5.4 allows control frames inside fragmented messages), a
 * close 1001 on drain. Pings go to the client unmasked and to the upstream masked (§5.3: the gateway is the
 * client there). Pongs are relayed on like any frame; an unsolicited pong is allowed and ignored (§5.5.3).
 */
import { randomFillSync } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { closePayload, encodeControlFrame, FrameScanner, OPCODES } from '../protocol/ws-frame-scanner.js';

export type Side = 'client' | 'upstream';
export type Closer = Side | 'gateway';

export interface RelayTimers {
  /** Milliseconds between pings to each side; 0: none. */
  readonly ping: number;
  /** Milliseconds to wait for a pong (or any byte) after a ping. */
  readonly pingTimeout: number;
  /** Milliseconds without a byte either way before the gateway closes it; 0: never. */
  readonly idleTimeout: number;
  /** Milliseconds before the gateway closes it however busy; 0: never. */
  readonly maxLifetime: number;
}

export interface RelayEnd {
  readonly bytesToUpstream: number;
  readonly bytesToClient: number;
  /** Who sent the first close frame, or closed the connection first. */
  readonly closedBy: Closer;
  /** The first close code seen (1005 when the close frame had none); null when no close frame went by. */
  readonly closeCode: number | null;
  /** Why the gateway ended it, when it did. */
  readonly reason: 'dead_client' | 'dead_upstream' | 'idle' | 'lifetime' | 'drain' | 'protocol' | null;
  readonly durationMs: number;
}

export interface RelayHooks {
  onEnd(end: RelayEnd): void;
  /** A ping missed its deadline on this side (the relay then closes). */
  onDead?(side: Side): void;
}

/** How long the gateway waits for the peers to answer its own close before cutting the sockets. */
const CLOSE_GRACE_MS = 3_000;

function mask(): Buffer {
  return randomFillSync(Buffer.allocUnsafe(4));
}

class Direction {
  readonly scanner: FrameScanner;
  /** Frames the gateway wants to send in this direction, waiting for a frame boundary. */
  pending: Buffer[] = [];
  bytes = 0;
  /** True once the gateway sent its own close this way: later frames from the source are dropped. */
  discard = false;
  constructor(peer: string) {
    this.scanner = new FrameScanner(peer);
  }
}

export class WsRelay {
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #hooks: RelayHooks;
  readonly #timers: RelayTimers;
  readonly #started = Date.now();
  /** Frames from the client, to the upstream. */
  readonly #up = new Direction('the client');
  /** Frames from the upstream, to the client. */
  readonly #down = new Direction('the upstream');
  #closedBy: Closer | undefined;
  #firstCloseCode: number | undefined;
  #reason: RelayEnd['reason'] = null;
  #timer: NodeJS.Timeout | undefined;
  #lifetime: NodeJS.Timeout | undefined;
  #grace: NodeJS.Timeout | undefined;
  #pingMarks:
    { clientBytes: number; upstreamBytes: number; clientPongs: number; upstreamPongs: number } | undefined;
  #ended = false;
  #closing = false;

  constructor(client: Duplex, upstream: Duplex, timers: RelayTimers, hooks: RelayHooks) {
    this.#client = client;
    this.#upstream = upstream;
    this.#timers = timers;
    this.#hooks = hooks;
  }

  /**
   * Starts relaying. `fromUpstream`: bytes that followed the 101 in the upstream's answer; `fromClient`: bytes
   * the client sent after its request head. Both are frames already and go on first.
   */
  start(fromUpstream: Uint8Array, fromClient: Uint8Array): void {
    const c = this.#client;
    const u = this.#upstream;
    c.on('data', (chunk: Buffer) => this.#onData(chunk, this.#up, u, c));
    u.on('data', (chunk: Buffer) => this.#onData(chunk, this.#down, c, u));
    c.on('drain', () => u.resume());
    u.on('drain', () => c.resume());
    c.on('end', () => this.#onEnd('client'));
    u.on('end', () => this.#onEnd('upstream'));
    c.on('error', () => this.#destroy('client'));
    u.on('error', () => this.#destroy('upstream'));
    c.on('close', () => this.#onClose('client'));
    u.on('close', () => this.#onClose('upstream'));
    if (fromUpstream.length > 0) this.#onData(Buffer.from(fromUpstream), this.#down, c, u);
    if (fromClient.length > 0) this.#onData(Buffer.from(fromClient), this.#up, u, c);
    const t = this.#timers;
    if (t.idleTimeout > 0) {
      // net.Socket resets its timeout on every read and write, so the client socket alone sees traffic both ways.
      (c as Duplex & { setTimeout?: (ms: number) => void }).setTimeout?.(t.idleTimeout);
      c.on('timeout', () => this.close(1001, 'idle timeout', 'idle'));
    }
    if (t.maxLifetime > 0) {
      this.#lifetime = setTimeout(() => this.close(1001, 'max lifetime', 'lifetime'), t.maxLifetime);
    }
    if (t.ping > 0) this.#timer = setTimeout(() => this.#sendPings(), t.ping);
  }

  get bytesToUpstream(): number {
    return this.#up.bytes;
  }

  get bytesToClient(): number {
    return this.#down.bytes;
  }

  #onData(chunk: Buffer, dir: Direction, to: Duplex, from: Duplex): void {
    let boundary: number;
    try {
      boundary = dir.scanner.scan(chunk);
    } catch {
      this.#reason = 'protocol';
      this.#closedBy ??= from === this.#client ? 'client' : 'upstream';
      this.#destroy(from === this.#client ? 'client' : 'upstream');
      return;
    }
    if (this.#firstCloseCode === undefined && dir.scanner.closeCode !== undefined) {
      this.#firstCloseCode = dir.scanner.closeCode;
      this.#closedBy ??= dir === this.#up ? 'client' : 'upstream';
    }
    if (dir.discard) {
      // The gateway closed this way: the source's reply close ends its part of the handshake (§7.1.1: the server
      // closes TCP first, so the client socket is ended here; the upstream ends its own).
      if (dir === this.#up && dir.scanner.closeCode !== undefined) this.#client.end();
      return;
    }
    dir.bytes += chunk.length;
    let ok: boolean;
    if (dir.pending.length > 0 && (boundary > 0 || dir.scanner.atBoundary)) {
      if (boundary > 0) to.write(chunk.subarray(0, boundary));
      ok = this.#flushPending(dir, to);
      if (boundary < chunk.length) ok = to.write(chunk.subarray(boundary));
      if (dir.discard) return;
    } else ok = to.write(chunk);
    if (!ok) from.pause();
  }

  /** Writes the gateway's own frames; the stream is at a frame boundary. */
  #flushPending(dir: Direction, to: Duplex): boolean {
    let ok = true;
    for (const f of dir.pending) {
      ok = to.write(f);
      if (f[0] === (0x80 | OPCODES.close)) dir.discard = true;
    }
    dir.pending = [];
    return ok;
  }

  /** Queues a control frame towards `side`, written now when the stream is between frames. */
  #inject(side: Side, frame: Buffer): void {
    const dir = side === 'client' ? this.#down : this.#up;
    const to = side === 'client' ? this.#client : this.#upstream;
    if (dir.discard) return;
    dir.pending.push(frame);
    if (dir.scanner.atBoundary) this.#flushPending(dir, to);
  }

  #sendPings(): void {
    this.#timer = undefined;
    if (this.#ended || this.#closing) return;
    this.#pingMarks = {
      clientBytes: this.#up.bytes,
      upstreamBytes: this.#down.bytes,
      clientPongs: this.#up.scanner.pongs,
      upstreamPongs: this.#down.scanner.pongs,
    };
    const payload = Buffer.from('wsvia');
    this.#inject('client', encodeControlFrame(OPCODES.ping, payload));
    this.#inject('upstream', encodeControlFrame(OPCODES.ping, payload, mask()));
    this.#timer = setTimeout(() => this.#checkPongs(), this.#timers.pingTimeout);
  }

  #checkPongs(): void {
    this.#timer = undefined;
    const m = this.#pingMarks;
    if (!m || this.#ended || this.#closing) return;
    // Any byte from a side since the ping proves it alive: a busy peer's pong may sit behind its data, and a
    // ping still waiting for a frame boundary was never sent.
    const clientAlive =
      this.#up.scanner.pongs > m.clientPongs ||
      this.#up.bytes > m.clientBytes ||
      this.#down.pending.length > 0;
    const upstreamAlive =
      this.#down.scanner.pongs > m.upstreamPongs ||
      this.#down.bytes > m.upstreamBytes ||
      this.#up.pending.length > 0;
    if (!clientAlive) {
      this.#hooks.onDead?.('client');
      this.#reap('client');
      return;
    }
    if (!upstreamAlive) {
      this.#hooks.onDead?.('upstream');
      this.#reap('upstream');
      return;
    }
    const rest = Math.max(0, this.#timers.ping - this.#timers.pingTimeout);
    this.#timer = setTimeout(() => this.#sendPings(), rest);
  }

  /** A side stopped answering: cut it, and tell the other one, which is alive, with a clean close. */
  #reap(dead: Side): void {
    this.#reason = dead === 'client' ? 'dead_client' : 'dead_upstream';
    this.#closedBy ??= 'gateway';
    (dead === 'client' ? this.#client : this.#upstream).destroy();
    const alive: Side = dead === 'client' ? 'upstream' : 'client';
    this.#closing = true;
    this.#inject(alive, this.#closeFrame(alive, 1001, 'peer unresponsive'));
    this.#armGrace();
  }

  #closeFrame(side: Side, code: number, reason: string): Buffer {
    const p = closePayload(code, reason);
    return side === 'client'
      ? encodeControlFrame(OPCODES.close, p)
      : encodeControlFrame(OPCODES.close, p, mask());
  }

  /**
   * The gateway closes the WebSocket itself (drain, idle, lifetime): a close frame to each side, both answers
   * dropped rather than relayed (each side gets exactly one close handshake, with the gateway), then the sockets
   * end. Cut after a grace period if a peer never answers.
   */
  close(code: number, reason: string, why: NonNullable<RelayEnd['reason']>): void {
    if (this.#ended || this.#closing) return;
    this.#closing = true;
    this.#reason = why;
    this.#closedBy ??= 'gateway';
    this.#inject('client', this.#closeFrame('client', code, reason));
    this.#inject('upstream', this.#closeFrame('upstream', code, reason));
    this.#armGrace();
  }

  /** Cuts both sockets now (shutdown after the drain timeout, tests). */
  destroy(): void {
    this.#client.destroy();
    this.#upstream.destroy();
  }

  #armGrace(): void {
    clearTimeout(this.#grace);
    this.#grace = setTimeout(() => {
      this.#client.destroy();
      this.#upstream.destroy();
    }, CLOSE_GRACE_MS);
  }

  #onEnd(side: Side): void {
    this.#closedBy ??= side;
    // Half-close goes on (the peer's FIN after its close frame); the other side finishes its writes first.
    (side === 'client' ? this.#upstream : this.#client).end();
  }

  #destroy(side: Side): void {
    this.#closedBy ??= side;
    this.#client.destroy();
    this.#upstream.destroy();
  }

  #onClose(side: Side): void {
    this.#closedBy ??= side;
    const other = side === 'client' ? this.#upstream : this.#client;
    // The other side may still be flushing what this side sent last; end it, and cut it if it lingers.
    if (!other.destroyed) {
      other.end();
      if (!this.#grace) this.#armGrace();
      return;
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#lifetime);
    clearTimeout(this.#grace);
    const closeCode = this.#firstCloseCode ?? null;
    this.#hooks.onEnd({
      bytesToUpstream: this.#up.bytes,
      bytesToClient: this.#down.bytes,
      closedBy: this.#closedBy ?? 'gateway',
      closeCode:
        this.#reason === 'drain' || this.#reason === 'idle' || this.#reason === 'lifetime' ? 1001 : closeCode,
      reason: this.#reason,
      durationMs: Date.now() - this.#started,
    });
  }
}
