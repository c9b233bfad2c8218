/**
 * Ending a socket abnormally, whatever its type. A relay that lost one side passes the loss on as a reset, so the far
 * peer never takes a truncated stream for a complete one (STYLE.md trap 18). `resetAndDestroy()` exists only on a
 * plain TCP handle: on a TLSSocket (whose handle is the TLS wrap) it throws ERR_INVALID_HANDLE_TYPE, and thrown from
 * a close handler it took a whole server down (trap 11). Every relay resets through this one function.
 */
import fs from 'node:fs';
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
 * Resets `stream`: a TCP RST for a plain socket with a live handle (for a TLS socket, on the TCP socket under it when
 * it has one), otherwise `destroy(error)` (a socket whose handle is gone, or any other Duplex such as a WebSocket
 * stream). Never throws; a stream already destroyed is left alone.
 */
export function resetStream(stream: Duplex, error: Error = new StreamReset('peer')): void {
  if (stream.destroyed) return;
  if (stream instanceof tls.TLSSocket) {
    // A TLS socket over a TCP socket of its own (a server's accepted connection, `new TLSSocket(raw)`,
    // `tls.connect({ socket })`) still has that socket's TCP handle: reset it, or the peer's TLS stack reads the
    // FIN that destroy() sends as a clean end (a missing close_notify is no error to Node's TLS client). The TLS
    // socket then closes by itself once it sees its transport gone; destroying it before that crashes Node 20
    // (SIGSEGV in the TLS wrap), so it is left alone. A socket that tls.connect() opened itself has no such
    // parent, and only destroy(error) is left.
    const parent = (stream as tls.TLSSocket & { _parent?: unknown })._parent;
    if (parent instanceof net.Socket && !(parent instanceof tls.TLSSocket) && !parent.destroyed) {
      try {
        parent.resetAndDestroy();
        return;
      } catch {
        // The parent has no TCP handle: destroy the TLS socket with the error below.
      }
    }
  } else if (stream instanceof net.Socket) {
    try {
      stream.resetAndDestroy();
      return;
    } catch {
      // No TCP handle (not yet connected, or a socket wrapping another stream): destroy with the error below.
    }
  }
  stream.destroy(error);
}

const PROBE = Buffer.alloc(1);

/**
 * Whether this libuv takes bytes and an RST read in one wakeup for an end of stream. From 1.52 (Node 24) it reads on
 * while POLLIN is set, so the reset comes as an error (libuv#4997) and the probe below is one read(2) too many per
 * connection.
 */
export function endMayHideReset(uvVersion: string | undefined): boolean {
  const [major, minor] = (uvVersion ?? '').split('.').map(Number);
  if (major === undefined || minor === undefined || !Number.isInteger(major) || !Number.isInteger(minor))
    return true;
  return major < 1 || (major === 1 && minor < 52);
}

const PROBE_NEEDED = endMayHideReset(process.versions.uv);

/**
 * Whether a TCP socket that just emitted `end` was in fact reset. libuv before 1.52 (Node 20 and 22) reports the
 * last bytes and an RST that arrive in one wakeup as a clean end of stream: a partial read with POLLHUP set is taken
 * for EOF and the pending error is never read (libuv#4997, fixed in Node 24's libuv). A relay that believed it would
 * pass a FIN on, and the far peer would take a truncated stream for a complete one (trap 18). One more read(2) of
 * the descriptor tells them apart: after a FIN it returns 0, after a reset it fails with ECONNRESET. Not a TCP
 * socket with a descriptor (TLS, a pipe, any other Duplex), or a libuv that reports the reset itself: false.
 */
export function endWasReset(stream: Duplex): boolean {
  if (!PROBE_NEEDED) return false;
  if (!(stream instanceof net.Socket) || stream instanceof tls.TLSSocket) return false;
  const fd = (stream as net.Socket & { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return false;
  try {
    fs.readSync(fd, PROBE, 0, 1, null);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ECONNRESET';
  }
}
