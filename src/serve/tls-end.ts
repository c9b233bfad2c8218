/**
 * The end of a TLS connection a server terminated, bounded for every server (gateway, bridge, proxy): a handshake
 * that fails or does not finish closes its connection, and a connection whose client has ended it has a bounded
 * time to flush and close.
 */
import type tls from 'node:tls';

const CUT_TIMER = Symbol('wsvia.tlsCutTimer');
const CUT_AFTER = Symbol('wsvia.tlsCutAfter');
const HALF_OPEN = Symbol('wsvia.tlsHalfOpen');
const ENDED_SEEN = Symbol('wsvia.tlsEndedSeen');

/** A terminated TLS socket, with the time it has to close once its client ended it, and that timer. */
type TerminatedSocket = tls.TLSSocket & {
  [CUT_AFTER]?: number;
  [CUT_TIMER]?: NodeJS.Timeout;
  [HALF_OPEN]?: boolean;
  [ENDED_SEEN]?: boolean;
};

/**
 * Bounds the end of a terminated connection: once its client has ended it, it has `ms` to flush and close, then
 * it is cut, so its admission slot always comes back. Node loses a reset that its TLS layer's own write is the
 * first to meet (the TLS 1.3 session tickets it sends once the handshake is done, to a client that already
 * reset): the kernel reports the reset once, the read side then sees a clean end, and every later write waits
 * behind the failed one for good (crypto_tls.cc `EncOut` leaves `write_size_` set on a failed write), so the
 * socket never finishes and never closes by itself.
 *
 * `halfOpen` is for CONNECT tunnels, where a client that half-closed may still be sent bytes for as long as it
 * likes: it is cut once this side has ended too and the flush has had between `ms` and twice that. A tunnel whose
 * writes stall before that is an idle one, which the idle timeout ends. `ms` <= 0: no cut.
 */
export function cutAfterClientEnd(secure: tls.TLSSocket, ms: number, { halfOpen = false } = {}): void {
  if (!(ms > 0)) return;
  const s = secure as TerminatedSocket;
  s[CUT_AFTER] = ms;
  s[HALF_OPEN] = halfOpen;
  s.once('end', armCut);
  s.once('close', disarmCut);
}

/** Module-level handlers: no closure per connection. */
function armCut(this: TerminatedSocket): void {
  this[CUT_TIMER] = setTimeout(cutIfFlushing, this[CUT_AFTER], this).unref();
}

function cutIfFlushing(s: TerminatedSocket): void {
  if (s[HALF_OPEN] === true && s[ENDED_SEEN] !== true) {
    // A tunnel whose client half-closed: wait while this side still sends; once it has ended too, the flush gets
    // one more period.
    s[ENDED_SEEN] = s.writableEnded;
    s[CUT_TIMER]?.refresh();
  } else s.destroy();
}

function disarmCut(this: TerminatedSocket): void {
  clearTimeout(this[CUT_TIMER]);
}

/**
 * A terminator's `tlsClientError`: a handshake that failed, or did not finish within the handshake timeout, ends
 * its connection. Node only reports a handshake timeout and leaves the socket open: a client that sent its
 * ClientHello and nothing more would hold its admission slot for good.
 */
export function closeFailedHandshake(_err: Error, secure: tls.TLSSocket): void {
  secure.destroy();
}
