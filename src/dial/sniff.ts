/**
 * A pass-through Duplex over a socket that keeps the first bytes the peer sent. TLS inside a tunnel runs over it,
 * so when the far side answers a ClientHello in plain HTTP (an intercepting gateway's `500 handshakefailed`)
 * wsvia can show what it said instead of OpenSSL's "wrong version number". It also carries bytes that arrived
 * put back in the socket after the CONNECT answer, which the native TLS wrap would not see.
 */
import { Duplex } from 'node:stream';

export class RecordingDuplex extends Duplex {
  readonly #socket: Duplex;
  readonly #max: number;
  readonly #recorded: Buffer[] = [];
  #recordedBytes = 0;

  /** `first`: bytes already read off `socket` that come before anything it yields (a SOCKS reply's tail). */
  constructor(socket: Duplex, first: Uint8Array = new Uint8Array(0), maxRecord = 4096) {
    super({ allowHalfOpen: true });
    this.#socket = socket;
    this.#max = maxRecord;
    if (first.length > 0) this.#deliver(Buffer.from(first));
    socket.on('data', (chunk: Buffer) => this.#deliver(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  /** The first bytes received (up to the limit). */
  get recorded(): Buffer {
    return Buffer.concat(this.#recorded);
  }

  #deliver(chunk: Buffer): void {
    if (this.#recordedBytes < this.#max) {
      const part = chunk.subarray(0, this.#max - this.#recordedBytes);
      this.#recorded.push(Buffer.from(part));
      this.#recordedBytes += part.length;
    }
    if (!this.push(chunk)) this.#socket.pause();
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#socket.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#socket.destroy(err ?? undefined);
    cb(err);
  }

  /** Stop recording: the handshake is over and what follows is not kept. */
  stopRecording(): void {
    this.#recordedBytes = this.#max;
  }
}
