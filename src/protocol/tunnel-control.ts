/**
 * `wsvia.tunnel.v1`: the small control protocol wsvia's bridge and tunnel speak on top of a WebSocket, so that
 * what plain `binary` framing (websockify's) cannot say is said: that one direction of a TCP connection ended
 * while the other goes on (a half-close, RFC 9293 §3.6), and, on a reverse tunnel's control connection, that the
 * bridge listens and that a connection arrived.
 *
 * Data is always carried in binary frames, byte for byte. Control messages are text frames holding one small JSON
 * object (`{"type":"eof"}`); under `wsvia.tunnel.v1` a text frame is never data. Peers that negotiated `binary`
 * or no subprotocol (websockify and its clients) have no control messages: there a text frame's bytes are data
 * and a half-close cannot be carried.
 *
 * Sans-I/O: {@link parseControlMessage} takes one message's bytes and returns what it means, or throws a
 * {@link RemoteProtocolError}; {@link HalfClose} tracks which direction ended and says when the WebSocket can
 * close. Neither touches a socket.
 */
import { RemoteProtocolError } from '../errors.js';

/** The subprotocol of a data connection that carries half-closes. */
export const TUNNEL_SUBPROTOCOL = 'wsvia.tunnel.v1';
/** The subprotocol of a reverse tunnel's control connection. */
export const REVERSE_SUBPROTOCOL = 'wsvia.reverse.v1';
/** websockify's subprotocol: binary frames only, nothing else. */
export const BINARY_SUBPROTOCOL = 'binary';

/** A control message is small; anything longer is not one of ours. */
export const MAX_CONTROL_BYTES = 512;

/** A control message of `wsvia.tunnel.v1` or `wsvia.reverse.v1`, carried in a text frame. */
export type ControlMessage =
  /** The sender will send no more data in this direction (its TCP side read EOF). */
  | { readonly type: 'eof' }
  /** Reverse control: the bridge listens on `bind:port` for the tunnel. */
  | { readonly type: 'listening'; readonly bind: string; readonly port: number }
  /** Reverse control: a connection arrived; open a data WebSocket with `?connection=id` to take it. */
  | { readonly type: 'connection'; readonly id: string };

export const CONTROL_TYPES = ['eof', 'listening', 'connection'] as const;

const ID = /^[A-Za-z0-9_-]{8,64}$/;

function fail(why: string): never {
  throw new RemoteProtocolError(`invalid ${TUNNEL_SUBPROTOCOL} control message: ${why}`, {
    hop: 'websocket',
    hint: 'the peer is not a compatible wsvia bridge or tunnel',
  });
}

/** Serialises a control message for a text frame. */
export function formatControlMessage(m: ControlMessage): string {
  switch (m.type) {
    case 'eof':
      return '{"type":"eof"}';
    case 'listening':
      return JSON.stringify({ type: 'listening', bind: m.bind, port: m.port });
    case 'connection':
      return JSON.stringify({ type: 'connection', id: m.id });
  }
}

/** Parses one text frame's bytes (the whole message: a control message is never split across frames). */
export function parseControlMessage(bytes: Uint8Array): ControlMessage {
  if (bytes.length > MAX_CONTROL_BYTES) fail(`${bytes.length} bytes, limit is ${MAX_CONTROL_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return fail('not JSON text');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not a JSON object');
  const o = value as Record<string, unknown>;
  switch (o['type']) {
    case 'eof':
      return { type: 'eof' };
    case 'listening': {
      const { bind, port } = o;
      if (typeof bind !== 'string' || bind.length === 0 || bind.length > 255) return fail('bad bind');
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
        return fail('bad port');
      return { type: 'listening', bind, port };
    }
    case 'connection': {
      const { id } = o;
      if (typeof id !== 'string' || !ID.test(id)) return fail('bad connection id');
      return { type: 'connection', id };
    }
    default:
      return fail(`unknown type ${JSON.stringify(String(o['type'])).slice(0, 40)}`);
  }
}

export const DIRECTION_STATES = ['open', 'ended'] as const;
type DirectionState = (typeof DIRECTION_STATES)[number];

/**
 * The two directions of one tunnelled connection. `local` is what this side sends (its TCP socket's reads);
 * `remote` is what the peer sends. The WebSocket closes when both have ended, not before: that is what keeps the
 * answer to a half-closed request.
 */
export class HalfClose {
  #local: DirectionState = 'open';
  #remote: DirectionState = 'open';

  /** The local TCP side read EOF. Returns true the first time: send `eof` then. */
  localEnded(): boolean {
    if (this.#local === 'ended') return false;
    this.#local = 'ended';
    return true;
  }

  /** An `eof` arrived. Returns true the first time: end the local TCP socket's writes then. */
  remoteEnded(): boolean {
    if (this.#remote === 'ended') return false;
    this.#remote = 'ended';
    return true;
  }

  /** Data from the peer after its `eof` is a protocol error. */
  get remoteOpen(): boolean {
    return this.#remote === 'open';
  }

  /** Both directions ended: close the WebSocket normally (1000). */
  get done(): boolean {
    return this.#local === 'ended' && this.#remote === 'ended';
  }
}
