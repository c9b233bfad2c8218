/**
 * Refusing an upgrade before any TCP connection to a target: a plain HTTP answer whose status says what kind of
 * refusal it is and whose body (one line) says why, which `wsvia tunnel` and browsers' devtools show as is.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export function refuseUpgrade(
  socket: Duplex,
  status: number,
  reason: string,
  headers: readonly (readonly [string, string])[] = [],
): void {
  if (socket.destroyed) return;
  const body = `wsvia bridge: ${reason}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Refused'}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...headers.map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // A client that never reads its refusal must not hold the socket open.
  setTimeout(() => socket.destroy(), 5000).unref();
}
