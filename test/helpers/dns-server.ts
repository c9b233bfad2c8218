/**
 * A tiny authoritative DNS server for tests: UDP on 127.0.0.1, a port the OS chose. It answers A queries for the
 * names it was given with their address (or addresses, in the order given) and NXDOMAIN for every other name, and records every name asked, so a test
 * can say which names were (never) looked up. Real DNS over the wire: point a `dns.promises.Resolver` at it.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import { buildDnsAnswer, DNS_TYPE_A, parseDnsQuery, RCODE } from './dns-message.js';

export interface TestDnsServer {
  readonly port: number;
  /** Every name asked, in order (lowercased). */
  readonly asked: string[];
  /** A resolver that asks this server only. */
  resolver(): dns.promises.Resolver;
  close(): Promise<void>;
}

export async function startDnsServer(
  records: Readonly<Record<string, string | readonly string[]>>,
): Promise<TestDnsServer> {
  const names = new Map(
    Object.entries(records).map(([k, v]): [string, readonly string[]] => [
      k.toLowerCase(),
      typeof v === 'string' ? [v] : v,
    ]),
  );
  const socket = dgram.createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (msg, rinfo) => {
    let q;
    try {
      q = parseDnsQuery(msg);
    } catch {
      return; // not a query: a real server would answer FORMERR; the tests never send one
    }
    asked.push(q.name);
    const addresses = names.get(q.name);
    const answer =
      addresses === undefined
        ? buildDnsAnswer(q, RCODE.nxDomain)
        : buildDnsAnswer(q, RCODE.noError, q.type === DNS_TYPE_A ? addresses : []);
    socket.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const port = socket.address().port;
  return {
    port,
    asked,
    resolver: () => {
      const r = new dns.promises.Resolver({ timeout: 2000, tries: 2 });
      r.setServers([`127.0.0.1:${port}`]);
      return r;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
