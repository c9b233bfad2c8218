/**
 * Real proxies on loopback for the client's tests: squid (Basic, Digest or both in one 407; optional SSL_ports
 * rule), tinyproxy, the `proxy` npm package over http or https, and scripted misbehaving proxies that answer
 * CONNECT the way broken or hostile ones do (403, 407, 500, 503, early close, garbage, stall, split heads).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { createProxy } from 'proxy';
import { RequestHeadReader, type RequestHead } from '../../src/protocol/head.js';
import { formatHost } from '../../src/protocol/authority.js';
import { freePort, startPeer, tempDir, type Peer } from './process.js';

export interface RunningProxy {
  readonly url: string;
  readonly port: number;
  /** Lines the proxy logged about requests (squid's and tinyproxy's access logs), for proof that traffic passed. */
  log(): string;
  stop(): Promise<void>;
}

export interface SquidOptions {
  readonly auth?: 'none' | 'basic' | 'digest' | 'both';
  readonly users?: Readonly<Record<string, string>>;
  /** Squid's usual production rule: CONNECT only to port 443 (the classic 403 for any other port). */
  readonly sslPortsOnly?: boolean;
}

export async function startSquid(options: SquidOptions = {}): Promise<RunningProxy> {
  const dir = tempDir('wsvia-squid-');
  const port = await freePort();
  const users = options.users ?? { alice: 'wonder:land' };
  const auth = options.auth ?? 'none';
  const lines = [`http_port 127.0.0.1:${port}`];
  if (auth === 'digest' || auth === 'both') {
    fs.writeFileSync(
      path.join(dir, 'squid.digest'),
      Object.entries(users)
        .map(([u, p]) => `${u}:${p}`)
        .join('\n') + '\n',
    );
    lines.push(
      `auth_param digest program /usr/lib/squid/digest_file_auth ${dir}/squid.digest`,
      'auth_param digest realm test',
    );
  }
  if (auth === 'basic' || auth === 'both') {
    const file = path.join(dir, 'squid.htpasswd');
    fs.writeFileSync(file, '');
    for (const [u, p] of Object.entries(users))
      execFileSync('htpasswd', ['-b', file, u, p], { stdio: 'ignore' });
    lines.push(
      `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${file}`,
      'auth_param basic realm test',
    );
  }
  if (options.sslPortsOnly) lines.push('acl SSL_ports port 443', 'http_access deny CONNECT !SSL_ports');
  if (auth === 'none') lines.push('acl lo src 127.0.0.1/32', 'http_access allow lo');
  else lines.push('acl authed proxy_auth REQUIRED', 'http_access allow authed');
  lines.push(
    'http_access deny all',
    'cache deny all',
    `access_log stdio:${dir}/access.log`,
    `cache_log ${dir}/cache.log`,
    `pid_filename ${dir}/squid.pid`,
    `coredump_dir ${dir}`,
    'shutdown_lifetime 1 seconds',
  );
  fs.writeFileSync(path.join(dir, 'squid.conf'), `${lines.join('\n')}\n`);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  // squid drops privileges to the `proxy` user, which must write its logs here.
  execFileSync('chown', ['-R', 'proxy', dir]);
  const peer = await startPeer('squid', ['-N', '-f', path.join(dir, 'squid.conf')], { port });
  return fromPeer(peer, port, path.join(dir, 'access.log'), dir);
}

export async function startTinyproxy(): Promise<RunningProxy> {
  const dir = tempDir('wsvia-tinyproxy-');
  const port = await freePort();
  const conf = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 600',
    `LogFile "${dir}/tinyproxy.log"`,
    `PidFile "${dir}/tinyproxy.pid"`,
    'Allow 127.0.0.1',
    'LogLevel Info',
  ];
  fs.writeFileSync(path.join(dir, 'tinyproxy.conf'), `${conf.join('\n')}\n`);
  execFileSync('chown', ['-R', 'nobody', dir]);
  const peer = await startPeer('tinyproxy', ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { port });
  return fromPeer(peer, port, path.join(dir, 'tinyproxy.log'), dir);
}

function fromPeer(peer: Peer, port: number, logFile: string, dir: string): RunningProxy {
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '') + peer.output(),
    stop: async () => {
      await peer.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

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

/**
 * A proxy whose answer to CONNECT is scripted: `behave` gets the client socket and the parsed CONNECT head
 * (and the bytes that followed it), and does whatever a broken or hostile proxy does.
 */
export async function startScriptedProxy(
  behave: (socket: net.Socket, head: RequestHead, leftover: Uint8Array) => void,
): Promise<RunningProxy & { heads: RequestHead[] }> {
  const heads: RequestHead[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let reader = new RequestHeadReader({ peer: 'test client', hop: 'server' });
    const onData = (chunk: Buffer): void => {
      const r = reader.receive(chunk);
      if (!r) return;
      heads.push(r.head);
      reader = new RequestHeadReader({ peer: 'test client', hop: 'server' });
      socket.removeListener('data', onData);
      behave(socket, r.head, r.leftover);
      // Scripts that keep the connection for another request re-attach a reader themselves.
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    heads,
    log: () => heads.map((h) => `${h.method} ${h.target}`).join('\n'),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Relays a granted tunnel to `host:port`, sending `bytesFirst` to the client before relaying (eager bytes). */
export function relay(client: net.Socket, host: string, port: number, leftover: Uint8Array): void {
  const upstream = net.connect({ host, port });
  if (leftover.length) upstream.write(leftover);
  client.pipe(upstream).on('error', () => {});
  upstream.pipe(client).on('error', () => {});
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
}

export function targetOf(head: RequestHead): { host: string; port: number } {
  const t = head.target;
  const colon = t.lastIndexOf(':');
  return { host: t.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(t.slice(colon + 1)) };
}
