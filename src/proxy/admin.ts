/** The admin listener: Prometheus `/metrics` and `/healthz` (503 while draining, so a balancer stops sending). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHost } from '../protocol/authority.js';
import { PROMETHEUS_CONTENT_TYPE, type Registry } from '../observe/metrics.js';

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startAdmin(
  host: string,
  port: number,
  registry: Registry,
  healthy: () => boolean,
): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }).end(registry.render());
    } else if (path === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'draining\n');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${formatHost(host)}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
