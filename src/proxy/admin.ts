/** The admin listener: Prometheus `/metrics` and `/healthz` (503 while draining, so a balancer stops sending). */
import type { Registry } from '../observe/metrics.js';
import { AdminListener } from '../serve/admin.js';

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the shared `AdminListener` for a proxy; rejects with `LISTEN_FAILED` when it cannot bind. */
export async function startAdmin(
  host: string,
  port: number,
  registry: Registry,
  healthy: () => boolean,
): Promise<AdminServer> {
  const admin = new AdminListener({ registry, healthy });
  await admin.listen(host, port);
  return admin;
}
