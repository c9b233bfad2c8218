/**
 * Ending a socket abnormally, whatever its type. A relay that lost one side passes the loss on as a reset, so the far
 * peer never takes a truncated stream for a complete one (STYLE.md trap 18). `resetAndDestroy()` exists only on a
 * plain TCP handle: on a TLSSocket (whose handle is the TLS wrap) it throws ERR_INVALID_HANDLE_TYPE, and thrown from
 * a close handler it took a whole server down (trap 11). Every relay resets through this one function.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

/** Why a stream was reset when the caller has no error of its own to give. */
export class StreamReset extends Error {
  override readonly name = 'StreamReset';
  constructor(readonly side: string) {
    super(`${side} reset`);
  }
}

/**
 * Resets `stream`: a TCP RST for a plain socket with a live handle, otherwise `destroy(error)` (a TLS socket, a
 * socket whose handle is gone, or any other Duplex such as a WebSocket stream). Never throws; a stream already
 * destroyed is left alone.
 */
export function resetStream(stream: Duplex, error: Error = new StreamReset('peer')): void {
  if (stream.destroyed) return;
  if (stream instanceof net.Socket && !(stream instanceof tls.TLSSocket)) {
    try {
      stream.resetAndDestroy();
      return;
    } catch {
      // No TCP handle (not yet connected, or a socket wrapping another stream): destroy with the error below.
    }
  }
  stream.destroy(error);
}
