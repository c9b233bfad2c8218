/**
 * The server's half of the WebSocket opening handshake (RFC 6455 §4.2.2), sans-I/O: the 101 answer for a request
 * whose shape was already checked (bridge/admission.ts `checkHandshake`). No extension is ever accepted, so frames
 * carry no compression and no reserved bits.
 */
import { createHash } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2 step 5.4). */
export function acceptValue(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** The whole 101 head, with the chosen subprotocol when there is one. */
export function switchingProtocols(key: string, protocol?: string): string {
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptValue(key)}\r\n` +
    (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
    '\r\n'
  );
}
