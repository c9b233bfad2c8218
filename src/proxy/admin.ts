/** The admin listener: Prometheus `/metrics` and `/healthz` (503 while draining, so a balancer stops sending). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHost } from '../protocol/authority.js';
import { serveAdminPage } from '../observe/admin-pages.js';
import type { Registry } from '../observe/metrics.js';

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
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else serveAdminPage(req, res, { registry, healthy });
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
