/**
 * A WebSocket frame *scanner* (RFC 6455 §5.2), sans-I/O, for a relay that forwards frames as raw bytes: it reads
 * only frame headers and skips payloads, so it costs a few operations per frame, never a copy. It tells the relay
 * where frames end (so a control frame of its own can be injected between two frames, which §5.4 allows even in
 * the middle of a fragmented message), when a pong or a close goes by, and the close code.
 *
 * It does not decode, unmask or validate payloads: the endpoints do that. It rejects only what makes the frame
 * boundaries themselves unknowable (a 64-bit length with its top bit set, a control frame over 125 bytes).
 */
import { RemoteProtocolError } from '../errors.js';

export const OPCODES = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

type ScanState = 'head0' | 'head1' | 'extlen' | 'mask' | 'payload';

/** Frames bigger than this cannot be relayed: 2^53 - 1, the largest exact integer. */
const MAX_PAYLOAD = Number.MAX_SAFE_INTEGER;

export class FrameScanner {
  readonly #peer: string;
  #state: ScanState = 'head0';
  #opcode = 0;
  #masked = false;
  #extNeeded = 0;
  #extRead = 0;
  #length = 0;
  #maskRead = 0;
  /** The first two mask bytes: all a close code needs (no per-connection array for a relay's idle cost). */
  #mask0 = 0;
  #mask1 = 0;
  #remaining = 0;
  #closeBytes = 0;
  #closeCode = 0;
  /** Pong frames seen so far (complete headers). */
  pongs = 0;
  /** Frames whose header was read. */
  frames = 0;
  /** Control frames (close, ping, pong) whose header was read. */
  controls = 0;
  /** The close code of the first close frame seen: 1005 when it had none (§7.1.5); undefined before. */
  closeCode: number | undefined;

  constructor(peer: string) {
    this.#peer = peer;
  }

  /**
   * Continues from another scanner's state (the native relay's, at a handback): `remaining` payload bytes of a
   * data frame still to come, or a frame boundary when 0. A control frame is never in progress there.
   */
  resumeInPayload(remaining: number, opcode: number = OPCODES.binary): void {
    if (remaining <= 0) return;
    this.#opcode = opcode;
    this.#remaining = remaining;
    this.#state = 'payload';
  }

  /**
   * Payload bytes still to come of the frame the scan ended in: 0 at a frame boundary, undefined in the middle of
   * a header.
   */
  get payloadRemaining(): number | undefined {
    if (this.#state === 'head0') return 0;
    return this.#state === 'payload' ? this.#remaining : undefined;
  }

  /** True when the bytes scanned so far end exactly at a frame boundary. */
  get atBoundary(): boolean {
    return this.#state === 'head0';
  }

  /**
   * Scans a chunk. Returns the offset just past the last frame that ended inside it (0 when none did and the
   * chunk started mid-frame, `chunk.length` when it ends on a boundary). Throws a RemoteProtocolError when the
   * frame structure is broken.
   */
  scan(chunk: Uint8Array): number {
    let last = this.#state === 'head0' ? 0 : -1;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case 'head0': {
          const b = chunk[i++] as number;
          this.#opcode = b & 0x0f;
          this.#state = 'head1';
          break;
        }
        case 'head1': {
          const b = chunk[i++] as number;
          this.#masked = (b & 0x80) !== 0;
          const len7 = b & 0x7f;
          if (this.#opcode >= 8 && len7 > 125) this.#fail('a control frame longer than 125 bytes');
          if (len7 === 126 || len7 === 127) {
            this.#extNeeded = len7 === 126 ? 2 : 8;
            this.#extRead = 0;
            this.#length = 0;
            this.#state = 'extlen';
          } else {
            this.#length = len7;
            this.#afterLength();
          }
          break;
        }
        case 'extlen': {
          const b = chunk[i++] as number;
          if (this.#extNeeded === 8 && this.#extRead === 0 && b & 0x80) {
            this.#fail('a 64-bit payload length with the most significant bit set');
          }
          this.#length = this.#length * 256 + b;
          if (this.#length > MAX_PAYLOAD) this.#fail('a payload length over 2^53 bytes');
          if (++this.#extRead === this.#extNeeded) this.#afterLength();
          break;
        }
        case 'mask': {
          const b = chunk[i++] as number;
          if (this.#maskRead === 0) this.#mask0 = b;
          else if (this.#maskRead === 1) this.#mask1 = b;
          this.#maskRead++;
          if (this.#maskRead === 4) this.#startPayload();
          break;
        }
        case 'payload': {
          if (this.#opcode === OPCODES.close && this.#closeBytes < 2) {
            // The close code is the first two payload bytes (§5.5.1), unmasked with the key's first two bytes.
            const b =
              (chunk[i++] as number) ^
              (this.#masked ? (this.#closeBytes === 0 ? this.#mask0 : this.#mask1) : 0);
            this.#closeCode = this.#closeCode * 256 + b;
            this.#closeBytes++;
            this.#remaining--;
            if (this.#closeBytes === 2 && this.closeCode === undefined) this.closeCode = this.#closeCode;
          } else {
            const take = Math.min(this.#remaining, n - i);
            i += take;
            this.#remaining -= take;
          }
          if (this.#remaining === 0) {
            this.#endFrame();
            last = i;
          }
          break;
        }
      }
    }
    return last < 0 ? 0 : last;
  }

  #afterLength(): void {
    this.frames++;
    if (this.#opcode >= 8) this.controls++;
    if (this.#opcode === OPCODES.pong) this.pongs++;
    if (this.#masked) {
      this.#maskRead = 0;
      this.#state = 'mask';
    } else this.#startPayload();
  }

  #startPayload(): void {
    this.#remaining = this.#length;
    this.#closeBytes = 0;
    this.#closeCode = 0;
    if (this.#opcode === OPCODES.close && this.#length < 2 && this.closeCode === undefined) {
      this.closeCode = 1005;
    }
    if (this.#remaining === 0) this.#endFrame();
    else this.#state = 'payload';
  }

  #endFrame(): void {
    this.#state = 'head0';
  }

  #fail(what: string): never {
    throw new RemoteProtocolError(`${this.#peer} sent a broken WebSocket frame (${what})`, {
      hop: 'websocket',
    });
  }
}

/**
 * A control frame (ping, pong or close) ready for the wire. `mask` (4 bytes) is required towards a server
 * (§5.3: a client masks every frame) and must be absent towards a client.
 */
export function encodeControlFrame(opcode: 8 | 9 | 10, payload: Uint8Array, mask?: Uint8Array): Buffer {
  if (payload.length > 125) throw new RangeError('control frame payloads are at most 125 bytes (§5.5)');
  const head = mask ? 6 : 2;
  const out = Buffer.allocUnsafe(head + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = (mask ? 0x80 : 0) | payload.length;
  if (mask) {
    out.set(mask.subarray(0, 4), 2);
    for (let i = 0; i < payload.length; i++) out[6 + i] = (payload[i] as number) ^ (mask[i & 3] as number);
  } else out.set(payload, 2);
  return out;
}

/** A close frame payload: the code, then a UTF-8 reason (§5.5.1). */
export function closePayload(code: number, reason = ''): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(code, 0);
  out.set(text, 2);
  return out;
}
