/** `--admin`: Prometheus `/metrics` on its own address, away from the bridge's public port. */
import http from 'node:http';
import { PROMETHEUS_CONTENT_TYPE } from '../observe/metrics.js';
import type { Bridge } from './server.js';

export async function startAdmin(bridge: Bridge, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE });
      return res.end(bridge.metrics.registry.render());
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('try /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
