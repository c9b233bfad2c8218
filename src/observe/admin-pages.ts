/**
 * The pages of an admin listener, the same for the proxy, the gateway and the bridge: Prometheus `/metrics`,
 * `/healthz` (503 while draining, so a balancer stops sending) when the caller can tell, any extra pages, and a
 * 404 that lists what there is.
 */
import type http from 'node:http';
import { PROMETHEUS_CONTENT_TYPE, type Registry } from './metrics.js';

export interface AdminPage {
  readonly contentType: string;
  readonly body: string;
}

export interface AdminPagesOptions {
  readonly registry: Registry;
  /** False while draining: `/healthz` answers 503. Without it there is no `/healthz`. */
  readonly healthy?: () => boolean;
  /** More pages by path (the gateway's `/routes`). */
  readonly pages?: Readonly<Record<string, () => AdminPage>>;
}

/** Answers one admin request; the query string is ignored. */
export function serveAdminPage(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  o: AdminPagesOptions,
): void {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path === '/metrics') {
    res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }).end(o.registry.render());
    return;
  }
  if (path === '/healthz' && o.healthy) {
    const ok = o.healthy();
    res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'draining\n');
    return;
  }
  const page = Object.hasOwn(o.pages ?? {}, path) ? o.pages?.[path] : undefined;
  if (page) {
    const p = page();
    res.writeHead(200, { 'Content-Type': p.contentType }).end(p.body);
    return;
  }
  const known = ['/metrics', ...(o.healthy ? ['/healthz'] : []), ...Object.keys(o.pages ?? {})];
  const list = known.length === 1 ? known[0] : `${known.slice(0, -1).join(', ')} or ${known.at(-1)}`;
  res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`try ${list}\n`);
}
