/**
 * Where a server listens, one parser for every command and config file: `[HOST:]PORT` for `--listen` (proxy,
 * gateway, bridge, echo), `--tls-listen`, `--admin` and `-L`. HOST defaults to 127.0.0.1, an IPv6 address goes in
 * brackets (`[::1]:8080`), port 0 lets the system choose. A bad value is `INVALID_ARGUMENT` naming the flag.
 */
import { invalidArgument } from '../errors.js';
import { unbracket } from '../protocol/authority.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** A port number 0-65535; out of range names the range. */
export function parsePort(text: string, flag: string): number {
  if (!/^\d+$/.test(text.trim()))
    throw invalidArgument(`${flag} expects a port number, got ${JSON.stringify(text)}`);
  const port = Number(text);
  if (port > 65535) throw invalidArgument(`${flag}: port ${text.trim()} is out of range 0-65535`);
  return port;
}

export function parseListen(text: string, flag: string, defaultHost = '127.0.0.1'): ListenAddress {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):)?(\d+)$/.exec(text.trim());
  if (!m)
    throw invalidArgument(`${flag} expects [HOST:]PORT (IPv6 in brackets), got ${JSON.stringify(text)}`);
  return { host: m[1] === undefined ? defaultHost : unbracket(m[1]), port: parsePort(m[2] as string, flag) };
}

/** `HOST:PORT` with an IPv6 host in brackets. */
export function formatListen(a: ListenAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
