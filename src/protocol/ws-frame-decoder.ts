/**
 * A streaming WebSocket frame *decoder* (RFC 6455 §5), sans-I/O, for an endpoint that carries messages as a byte
 * stream (the bridge): payload bytes are unmasked and handed on as they arrive, so a frame of any size costs only
 * the bytes of the current read, never the whole frame or message. `ws` and browsers buffer a message whole; a
 * byte pipe must not (a client that sends the head of a 16 MiB frame would otherwise hold 16 MiB of the bridge).
 *
 * Control frames (§5.5) are at most 125 bytes and are returned whole. Data frames come out as `data` events,
 * one per piece of payload in the chunk given, each saying which kind of message it belongs to and whether it is
 * the message's last piece. Messages are not validated as UTF-8: text frames' bytes are handed on as they are.
 *
 * The decoder takes ownership of every chunk: payloads are unmasked in place and returned as views of the chunk.
 * Frames that break §5.2 (reserved bits without an extension, a bad opcode, a fragmented or long control frame,
 * a continuation without a message, a new message inside another, a mask where none belongs or none where it
 * must be) throw a {@link FrameError} whose `closeCode` is what the endpoint answers (1002).
 */
import { createRequire } from 'node:module';
import { RemoteProtocolError } from '../errors.js';
import { OPCODES } from './ws-frame-scanner.js';

export type MessageKind = 'text' | 'binary';

export type FrameEvent =
  /** A piece of a data message's payload, unmasked. `last`: the message ends with it. */
  | { readonly type: 'data'; readonly kind: MessageKind; readonly payload: Buffer; readonly last: boolean }
  | { readonly type: 'ping' | 'pong'; readonly payload: Buffer }
  /** `code` is 1005 when the frame had none (§7.1.5); the reason is decoded leniently. */
  | { readonly type: 'close'; readonly code: number; readonly reason: string };

/** A frame that breaks RFC 6455: the endpoint closes with `closeCode` and drops the connection. */
export class FrameError extends RemoteProtocolError {
  constructor(
    peer: string,
    what: string,
    readonly closeCode: 1002 | 1007 = 1002,
  ) {
    super(`${peer} sent a broken WebSocket frame (${what})`, { hop: 'websocket' });
  }
}

type State = 'head0' | 'head1' | 'extlen' | 'mask' | 'payload' | 'closed';

const MAX_PAYLOAD = Number.MAX_SAFE_INTEGER;

type Unmask = (buffer: Buffer, mask: Buffer) => void;

function unmaskJs(buffer: Buffer, mask: Buffer): void {
  for (let i = 0; i < buffer.length; i++) buffer[i] = (buffer[i] as number) ^ (mask[i & 3] as number);
}

/** `ws`'s optional native helper (the `bufferutil` package) when it is installed; the loop above otherwise. */
function loadUnmask(): Unmask {
  try {
    const m = createRequire(import.meta.url)('bufferutil') as { unmask?: Unmask };
    if (typeof m.unmask === 'function') return m.unmask;
  } catch {
    // Not installed: the plain loop is correct, only slower.
  }
  return unmaskJs;
}
const unmask = loadUnmask();

export interface DecoderOptions {
  /** Who is reading: a server requires masked frames, a client refuses them (§5.1). */
  readonly role: 'server' | 'client';
  /** Names the peer in errors. */
  readonly peer: string;
}

/** Decodes one direction of a WebSocket connection. See the module comment. */
export class FrameDecoder {
  readonly #role: 'server' | 'client';
  readonly #peer: string;
  #state: State = 'head0';
  #fin = false;
  #opcode = 0;
  #extNeeded = 0;
  #extRead = 0;
  #length = 0;
  #remaining = 0;
  readonly #mask = Buffer.alloc(4);
  #maskRead = 0;
  #masked = false;
  /** Offset into the mask of the next payload byte. */
  #maskAt = 0;
  /** The data message in progress (for continuations), or undefined between messages. */
  #message: MessageKind | undefined;
  /** A control frame's payload, gathered (at most 125 bytes). */
  #control: Buffer[] = [];

  constructor(options: DecoderOptions) {
    this.#role = options.role;
    this.#peer = options.peer;
  }

  /** True after a close frame: nothing that follows it is read (§5.5.1). */
  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** Decodes a chunk (and takes it over: see the module comment). Throws {@link FrameError}. */
  receive(chunk: Buffer): FrameEvent[] {
    const out: FrameEvent[] = [];
    let i = 0;
    const n = chunk.length;
    while (i < n && this.#state !== 'closed') {
      switch (this.#state) {
        case 'head0':
          this.#head0(chunk[i++] as number);
          break;
        case 'head1':
          this.#head1(chunk[i++] as number, out);
          break;
        case 'extlen':
          this.#extlen(chunk[i++] as number, out);
          break;
        case 'mask':
          this.#mask[this.#maskRead++] = chunk[i++] as number;
          if (this.#maskRead === 4) this.#startPayload(out);
          break;
        case 'payload': {
          const take = Math.min(this.#remaining, n - i);
          this.#payload(chunk.subarray(i, i + take), out);
          i += take;
          break;
        }
      }
    }
    return out;
  }

  #head0(b: number): void {
    if (b & 0x70) this.#fail('reserved bits set, and no extension was negotiated');
    this.#fin = (b & 0x80) !== 0;
    this.#opcode = b & 0x0f;
    const op = this.#opcode;
    if (op >= 8) {
      if (op > OPCODES.pong) this.#fail(`reserved control opcode ${op}`);
      if (!this.#fin) this.#fail('a fragmented control frame');
    } else if (op === OPCODES.continuation) {
      if (this.#message === undefined) this.#fail('a continuation frame outside a message');
    } else if (op === OPCODES.text || op === OPCODES.binary) {
      if (this.#message !== undefined) this.#fail('a new message before the previous one ended');
      this.#message = op === OPCODES.text ? 'text' : 'binary';
    } else this.#fail(`reserved data opcode ${op}`);
    this.#state = 'head1';
  }

  #head1(b: number, out: FrameEvent[]): void {
    this.#masked = (b & 0x80) !== 0;
    if (this.#masked !== (this.#role === 'server'))
      this.#fail(this.#masked ? 'a masked frame from a server' : 'an unmasked frame from a client');
    const len7 = b & 0x7f;
    if (this.#opcode >= 8 && len7 > 125) this.#fail('a control frame longer than 125 bytes');
    if (len7 === 126 || len7 === 127) {
      this.#extNeeded = len7 === 126 ? 2 : 8;
      this.#extRead = 0;
      this.#length = 0;
      this.#state = 'extlen';
    } else {
      this.#length = len7;
      this.#afterLength(out);
    }
  }

  #extlen(b: number, out: FrameEvent[]): void {
    if (this.#extNeeded === 8 && this.#extRead === 0 && b & 0x80)
      this.#fail('a 64-bit payload length with the most significant bit set');
    this.#length = this.#length * 256 + b;
    if (this.#length > MAX_PAYLOAD) this.#fail('a payload length over 2^53 bytes');
    if (++this.#extRead === this.#extNeeded) this.#afterLength(out);
  }

  #afterLength(out: FrameEvent[]): void {
    if (this.#masked) {
      this.#maskRead = 0;
      this.#state = 'mask';
    } else this.#startPayload(out);
  }

  #startPayload(out: FrameEvent[]): void {
    this.#remaining = this.#length;
    this.#maskAt = 0;
    this.#control = [];
    if (this.#remaining === 0) this.#endFrame(Buffer.alloc(0), out);
    else this.#state = 'payload';
  }

  #payload(piece: Buffer, out: FrameEvent[]): void {
    if (this.#masked) this.#unmask(piece);
    this.#remaining -= piece.length;
    if (this.#opcode >= 8) {
      this.#control.push(piece);
      if (this.#remaining === 0) this.#endFrame(Buffer.concat(this.#control), out);
      return;
    }
    if (this.#remaining === 0) return this.#endFrame(piece, out);
    if (piece.length > 0)
      out.push({ type: 'data', kind: this.#message as MessageKind, payload: piece, last: false });
  }

  #unmask(piece: Buffer): void {
    // Bytes up to the next multiple of 4 by hand, so the native helper always starts at the mask's first byte.
    let k = 0;
    while (this.#maskAt !== 0 && k < piece.length) {
      piece[k] = (piece[k] as number) ^ (this.#mask[this.#maskAt] as number);
      this.#maskAt = (this.#maskAt + 1) & 3;
      k++;
    }
    if (k === piece.length) return;
    const rest = piece.subarray(k);
    unmask(rest, this.#mask);
    this.#maskAt = rest.length & 3;
  }

  /** A frame's last payload byte arrived (or it had none): `payload` is its last piece (control: all of it). */
  #endFrame(payload: Buffer, out: FrameEvent[]): void {
    this.#state = 'head0';
    const op = this.#opcode;
    if (op === OPCODES.ping || op === OPCODES.pong) {
      out.push({ type: op === OPCODES.ping ? 'ping' : 'pong', payload });
    } else if (op === OPCODES.close) {
      out.push(this.#close(payload));
      this.#state = 'closed';
    } else {
      const kind = this.#message as MessageKind;
      if (this.#fin) this.#message = undefined;
      if (payload.length > 0 || this.#fin) out.push({ type: 'data', kind, payload, last: this.#fin });
    }
  }

  #close(payload: Buffer): FrameEvent {
    if (payload.length === 0) return { type: 'close', code: 1005, reason: '' };
    if (payload.length === 1) this.#fail('a close frame with a 1-byte payload');
    const code = payload.readUInt16BE(0);
    // §7.4: codes a peer may send; 1005, 1006 and 1015 are only ever reported locally.
    const valid =
      (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
      (code >= 3000 && code <= 4999);
    if (!valid) this.#fail(`close code ${code}`);
    return { type: 'close', code, reason: payload.subarray(2).toString('utf8') };
  }

  #fail(what: string): never {
    throw new FrameError(this.#peer, what);
  }
}

/** A frame header for `length` payload bytes (a server's: unmasked, §5.1), final. */
export function encodeFrameHeader(opcode: number, length: number): Buffer {
  const ext = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = Buffer.allocUnsafe(2 + ext);
  head[0] = 0x80 | opcode;
  head[1] = ext === 0 ? length : ext === 2 ? 126 : 127;
  if (ext === 2) head.writeUInt16BE(length, 2);
  else if (ext === 8) head.writeBigUInt64BE(BigInt(length), 2);
  return head;
}
