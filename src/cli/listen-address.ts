/** `[HOST:]PORT` listen addresses for the bridge and the tunnel: port 0 allowed (the system chooses). */
import { unbracket } from '../protocol/authority.js';
import { UsageError } from './output.js';

export function parseListen(
  text: string,
  flag: string,
  defaultHost = '127.0.0.1',
): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535)
    throw new UsageError(`${flag} expects [HOST:]PORT (IPv6 in brackets), got ${JSON.stringify(text)}`);
  return { host: m[1] === undefined ? defaultHost : unbracket(m[1]), port };
}
