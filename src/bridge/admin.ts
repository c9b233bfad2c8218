/** `--admin`: Prometheus `/metrics` on its own address, away from the bridge's public port. */
import http from 'node:http';
import { serveAdminPage } from '../observe/admin-pages.js';
import type { Bridge } from './server.js';

/** Starts the bridge's admin listener (Prometheus `/metrics`) on `host:port`; resolves once it listens. */
export async function startAdmin(bridge: Bridge, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    serveAdminPage(req, res, { registry: bridge.metrics.registry });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
