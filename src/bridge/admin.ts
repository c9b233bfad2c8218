/** `--admin`: Prometheus `/metrics` and `/healthz` on their own address, away from the bridge's public port. */
import type http from 'node:http';
import { AdminListener } from '../serve/admin.js';
import type { Bridge } from './server.js';

/** Starts the bridge's admin listener (the shared `AdminListener`); resolves with its server once bound. */
export async function startAdmin(bridge: Bridge, host: string, port: number): Promise<http.Server> {
  const admin = new AdminListener({
    registry: bridge.metrics.registry,
    ...(bridge.draining === undefined ? {} : { healthy: () => !bridge.draining }),
  });
  await admin.listen(host, port);
  return admin.server;
}
