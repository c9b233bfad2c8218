/** Small TCP servers on loopback ports for the bridge tests. */
import { createHash } from 'node:crypto';
import net from 'node:net';

export interface TcpServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

async function listen(handler: (s: net.Socket) => void): Promise<TcpServer> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    handler(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Echoes every byte; ends when its peer ends. */
export function tcpEcho(): Promise<TcpServer> {
  return listen((s) => s.pipe(s));
}

/**
 * Answers only after the client's EOF: `bytes=N sha256=HEX\n` then the whole input again, then closes. A tunnel
 * that loses the half-close (or the answer after it) fails against it.
 */
export function answerAfterEof(): Promise<TcpServer> {
  return listen((s) => {
    const hash = createHash('sha256');
    const parts: Buffer[] = [];
    let n = 0;
    s.on('data', (c: Buffer) => {
      hash.update(c);
      n += c.length;
      if (n <= 4 * 1024 * 1024) parts.push(c);
    });
    s.on('end', () => {
      s.write(`bytes=${n} sha256=${hash.digest('hex')}\n`);
      s.end(Buffer.concat(parts));
    });
  });
}

/** Says its name and closes: tells targets apart. */
export function namedServer(name: string): Promise<TcpServer> {
  return listen((s) => s.end(`${name}\n`));
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Connects, writes `data`, half-closes, and resolves with everything read until the server closes. */
export function exchange(port: number, data: Buffer | string, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true });
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('error', reject);
    s.once('connect', () => s.end(data));
    s.once('end', () => {
      s.end();
      resolve(Buffer.concat(parts));
    });
  });
}
