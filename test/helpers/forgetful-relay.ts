/**
 * A TCP relay that behaves like a NAT or stateful firewall whose flow table forgets idle connections: after
 * `forgetAfterMs` without a byte either way it silently drops everything on that connection, closing nothing.
 * The kind of path that only a ping without a pong reveals (a "black hole"). Real firewalls cannot be set up on
 * loopback without changing the host's own packet filter, which tests must not touch.
 */
import net from 'node:net';

export interface ForgetfulRelay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startForgetfulRelay(
  upstreamPort: number,
  forgetAfterMs: number,
): Promise<ForgetfulRelay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    let last = performance.now();
    let forgotten = false;
    const forward = (to: net.Socket) => (chunk: Buffer) => {
      if (!forgotten && performance.now() - last > forgetAfterMs) forgotten = true;
      if (forgotten) return;
      last = performance.now();
      to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
