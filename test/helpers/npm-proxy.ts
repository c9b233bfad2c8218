/** The `proxy` npm package (TooTallNate's) in process, over http or https, optionally with Basic auth. */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { createProxy } from 'proxy';
import { formatHost } from '../../src/protocol/authority.js';
import type { RunningProxy } from './process.js';

/** The `proxy` npm package (TooTallNate's), in process: plain http, or https with the given key pair. */
export async function startNpmProxy(
  options: {
    host?: string;
    basicAuth?: { user: string; pass: string };
    tls?: { cert: string; key: string };
  } = {},
): Promise<RunningProxy & { requests: string[] }> {
  const server = createProxy(
    options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }) : http.createServer(),
  );
  const requests: string[] = [];
  server.on('connect', (req: http.IncomingMessage) => requests.push(`${req.method} ${req.url}`));
  if (options.basicAuth) {
    const expected = `Basic ${Buffer.from(`${options.basicAuth.user}:${options.basicAuth.pass}`).toString('base64')}`;
    server.authenticate = (req) => req.headers['proxy-authorization'] === expected;
  }
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `${options.tls ? 'https' : 'http'}://${formatHost(host)}:${port}`,
    port,
    requests,
    log: () => requests.join('\n'),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
