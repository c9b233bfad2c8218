/**
 * The bridge side of reverse tunnels (`wsvia tunnel -R`). A tunnel's control WebSocket asks the bridge to listen
 * on a port its operator allowed (`--allow-reverse`); each connection accepted there is announced on the control
 * connection with a random id, and the tunnel answers by opening a data WebSocket (`?connection=ID`) that takes
 * it. The port is freed when the control connection goes (closed, or reaped by pings), and can be taken again
 * when the tunnel returns.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type WebSocket from 'ws';
import { formatControlMessage } from '../protocol/tunnel-control.js';

/** Accepted connections waiting for their data WebSocket, per port. */
const MAX_PENDING = 256;
const PENDING_TIMEOUT = 10_000;

interface Pending {
  readonly socket: net.Socket;
  readonly timer: NodeJS.Timeout;
  readonly port: number;
}

export class ReversePorts {
  readonly #ports = new Map<number, net.Server>();
  readonly #pending = new Map<string, Pending>();

  has(port: number): boolean {
    return this.#ports.has(port);
  }

  get size(): number {
    return this.#ports.size;
  }

  /** Listens on bind:port for `control`; rejects with the listen error (EADDRINUSE, EACCES). */
  async open(bind: string, port: number, control: () => WebSocket | undefined): Promise<net.Server> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#ports.set(port, server);
    server.on('connection', (socket) => {
      socket.on('error', () => {});
      const ws = control();
      if (!ws || ws.readyState !== ws.OPEN || this.#countFor(port) >= MAX_PENDING) return socket.destroy();
      const id = randomBytes(18).toString('base64url');
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        socket.destroy();
      }, PENDING_TIMEOUT);
      this.#pending.set(id, { socket, timer, port });
      socket.once('close', () => {
        if (this.#pending.get(id)?.socket === socket) {
          clearTimeout(timer);
          this.#pending.delete(id);
        }
      });
      ws.send(formatControlMessage({ type: 'connection', id }));
    });
    return server;
  }

  /** Frees the port and drops connections still waiting there (sessions already paired go on). */
  close(port: number): void {
    const server = this.#ports.get(port);
    if (!server) return;
    this.#ports.delete(port);
    server.close();
    for (const [id, p] of this.#pending) {
      if (p.port !== port) continue;
      clearTimeout(p.timer);
      p.socket.destroy();
      this.#pending.delete(id);
    }
  }

  /** Takes the waiting connection with this id, once. */
  take(id: string): net.Socket | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    return p.socket;
  }

  closeAll(): void {
    for (const port of [...this.#ports.keys()]) this.close(port);
  }

  #countFor(port: number): number {
    let n = 0;
    for (const p of this.#pending.values()) if (p.port === port) n++;
    return n;
  }
}
