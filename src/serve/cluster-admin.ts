/**
 * The admin listener of a server run as `--workers N` (node:cluster). The primary binds it once and answers for the
 * whole server: `/metrics` merges every worker's registry (observe/metrics-merge.ts), `/healthz` turns 503 when the
 * primary starts to drain and stays up until the last worker has exited, and other pages (the gateway's `/routes`)
 * come from the first worker that answers. Workers bind no admin port; they answer the primary over IPC.
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { adminAnswer, type AdminAnswer, type AdminPagesOptions } from '../observe/admin-pages.js';
import { mergeExpositions } from '../observe/metrics-merge.js';
import { AdminListener } from './admin.js';

interface AdminRequest {
  readonly wsviaAdmin: 'request';
  readonly id: number;
  readonly path: string;
}

/** A worker tells the primary it answers admin requests from now on. */
interface AdminReady {
  readonly wsviaAdmin: 'ready';
}

interface AdminResponse {
  readonly wsviaAdmin: 'response';
  readonly id: number;
  readonly answer: AdminAnswer;
}

function isAdminMessage<T extends AdminRequest | AdminResponse | AdminReady>(
  m: unknown,
  kind: T['wsviaAdmin'],
): m is T {
  return typeof m === 'object' && m !== null && (m as { wsviaAdmin?: unknown }).wsviaAdmin === kind;
}

/** How long the primary waits for a worker's answer before the scrape fails (500, naming the worker). */
const ANSWER_TIMEOUT_MS = 2000;

/** In a worker: answers the primary's admin requests from this worker's own pages. */
export function answerAdminRequests(pages: AdminPagesOptions): void {
  process.on('message', (m: unknown) => {
    if (!isAdminMessage<AdminRequest>(m, 'request')) return;
    const reply = (answer: AdminAnswer): void => {
      const response: AdminResponse = { wsviaAdmin: 'response', id: m.id, answer };
      // The primary may be gone (a worker outliving it is stopping anyway).
      process.send?.(response, undefined, {}, () => {});
    };
    adminAnswer(m.path, pages).then(reply, (e: unknown) =>
      reply({ status: 500, contentType: 'text/plain', body: `${String(e)}\n` }),
    );
  });
  const ready: AdminReady = { wsviaAdmin: 'ready' };
  process.send?.(ready, undefined, {}, () => {});
}

/** In the primary: the one admin listener of all workers. */
export class ClusterAdmin {
  readonly #listener: AdminListener;
  readonly #waiting = new Map<number, (a: AdminAnswer) => void>();
  /** Workers that answer admin requests (a worker still starting is not asked, nor counted). */
  readonly #ready = new Set<number>();
  #nextId = 1;
  #draining = false;

  constructor(pageNames: readonly string[] = []) {
    const pages = Object.fromEntries(pageNames.map((p) => [p, () => this.#fromFirstWorker(p)]));
    this.#listener = new AdminListener({
      registry: { render: () => this.#metrics() },
      healthy: () => !this.#draining,
      pages,
    });
    cluster.on('exit', (w) => this.#ready.delete(w.id));
    cluster.on('message', (w, m: unknown) => {
      if (isAdminMessage<AdminReady>(m, 'ready')) this.#ready.add(w.id);
      if (!isAdminMessage<AdminResponse>(m, 'response')) return;
      this.#waiting.get(m.id)?.(m.answer);
      this.#waiting.delete(m.id);
    });
  }

  get url(): string {
    return this.#listener.url;
  }

  /** The bound address, once listening. */
  address(): AddressInfo {
    return this.#listener.server.address() as AddressInfo;
  }

  listen(host: string, port: number, what = '--admin'): Promise<string> {
    return this.#listener.listen(host, port, what);
  }

  /** From now on `/healthz` answers 503, so a balancer stops sending while the workers drain. */
  drain(): void {
    this.#draining = true;
  }

  close(): Promise<void> {
    return this.#listener.close();
  }

  #workers(): Worker[] {
    return Object.values(cluster.workers ?? {})
      .filter((w): w is Worker => w !== undefined && w.isConnected() && this.#ready.has(w.id))
      .sort((a, b) => a.id - b.id);
  }

  #ask(worker: Worker, path: string): Promise<AdminAnswer> {
    const id = this.#nextId++;
    return new Promise<AdminAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`worker ${worker.id} did not answer ${path} within ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      this.#waiting.set(id, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
      const request: AdminRequest = { wsviaAdmin: 'request', id, path };
      worker.send(request, undefined, (e) => {
        if (!e) return;
        clearTimeout(timer);
        this.#waiting.delete(id);
        reject(e);
      });
    });
  }

  async #metrics(): Promise<string> {
    const workers = this.#workers();
    const answers = await Promise.all(workers.map((w) => this.#ask(w, '/metrics')));
    const merged = mergeExpositions(answers.map((a, i) => ({ worker: i, text: a.body })));
    return `${merged}# HELP wsvia_workers Worker processes whose metrics are merged here.\n# TYPE wsvia_workers gauge\nwsvia_workers ${workers.length}\n`;
  }

  async #fromFirstWorker(path: string): Promise<AdminAnswer> {
    const [first] = this.#workers();
    if (!first) throw new Error('no worker is running');
    return this.#ask(first, path);
  }
}
