/**
 * The admin listener every server offers on its own address (`--admin`), away from the public port: Prometheus
 * `/metrics`, `/healthz` (503 while draining, so a balancer stops sending) and any pages of the server's own.
 * It binds like the server does ({@link listen}), so a port in use fails the start before anything is announced.
 */
import http from 'node:http';
import { formatHost } from '../protocol/authority.js';
import { serveAdminPage, type AdminPagesOptions } from '../observe/admin-pages.js';
import { closeServer, listen } from './listener.js';

export class AdminListener {
  readonly #server: http.Server;
  #url = '';

  constructor(pages: AdminPagesOptions) {
    this.#server = http.createServer((req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      else serveAdminPage(req, res, pages);
    });
  }

  /** `http://HOST:PORT`, once listening. */
  get url(): string {
    return this.#url;
  }

  get server(): http.Server {
    return this.#server;
  }

  /** Binds; `what` names the flag or key for the error (`--admin`). */
  async listen(host: string, port: number, what = '--admin'): Promise<string> {
    const a = await listen(this.#server, host, port, what);
    this.#url = `http://${formatHost(host)}:${a.port}`;
    return this.#url;
  }

  close(): Promise<void> {
    const closed = closeServer(this.#server);
    this.#server.closeAllConnections();
    return closed;
  }
}
