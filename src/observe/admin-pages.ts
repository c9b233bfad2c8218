/**
 * The pages of an admin listener, the same for the proxy, the gateway and the bridge: Prometheus `/metrics`,
 * `/healthz` (503 while draining, so a balancer stops sending) when the caller can tell, any extra pages, and a
 * 404 that lists what there is.
 */
import type http from 'node:http';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';

export interface AdminPage {
  readonly contentType: string;
  readonly body: string;
}

/** A page with its status, as an admin listener answers it (or a `--workers` worker hands it to its primary). */
export interface AdminAnswer extends AdminPage {
  readonly status: number;
}

export interface AdminPagesOptions {
  /** What `/metrics` shows: a registry, or the merged registries of every worker. */
  readonly registry: { render(): string | Promise<string> };
  /** False while draining: `/healthz` answers 503. Without it there is no `/healthz`. */
  readonly healthy?: () => boolean;
  /** More pages by path (the gateway's `/routes`). */
  readonly pages?: Readonly<Record<string, () => AdminPage | Promise<AdminPage>>>;
}

/** The answer to one admin request for `path` (the query string is ignored). */
export async function adminAnswer(url: string, o: AdminPagesOptions): Promise<AdminAnswer> {
  const path = url.split('?')[0] ?? '/';
  if (path === '/metrics')
    return { status: 200, contentType: PROMETHEUS_CONTENT_TYPE, body: await o.registry.render() };
  if (path === '/healthz' && o.healthy) {
    const ok = o.healthy();
    return { status: ok ? 200 : 503, contentType: 'text/plain', body: ok ? 'ok\n' : 'draining\n' };
  }
  const page = Object.hasOwn(o.pages ?? {}, path) ? o.pages?.[path] : undefined;
  if (page) return { status: 200, ...(await page()) };
  const known = ['/metrics', ...(o.healthy ? ['/healthz'] : []), ...Object.keys(o.pages ?? {})];
  const list = known.length === 1 ? known[0] : `${known.slice(0, -1).join(', ')} or ${known.at(-1)}`;
  return { status: 404, contentType: 'text/plain', body: `try ${list}\n` };
}

/** Answers one admin request; a page that fails to render is a 500 (the listener lives on). */
export function serveAdminPage(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  o: AdminPagesOptions,
): void {
  adminAnswer(req.url ?? '/', o).then(
    (a) => res.writeHead(a.status, { 'Content-Type': a.contentType }).end(a.body),
    (e: unknown) =>
      res
        .writeHead(500, { 'Content-Type': 'text/plain' })
        .end(`${e instanceof Error ? e.message : String(e)}\n`),
  );
}
