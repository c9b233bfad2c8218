/**
 * SOCKS servers on loopback for tests: dante (SOCKS4 and SOCKS5, with username/password and port blocks),
 * microsocks (SOCKS5, no auth, names resolved at the proxy), both started with test/helpers/process.ts, and a
 * tiny in-process SOCKS4/SOCKS4a server: Debian ships no SOCKS4a server (dante speaks SOCKS4 but answers 91 to a
 * 4a name). That one follows the SOCKS4 protocol note and the SOCKS4A extension: DSTIP 0.0.0.x (x != 0) means a
 * name follows the user id. It records each request so a test can prove whether the name reached the proxy.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, runningPeer, startPeer, tempDir, type RunningPeer } from './process.js';

/** A system user for dante's username method (it checks passwords with the system's own). Idempotent. */
export function ensureSystemUser(user: string, password: string): void {
  if (spawnSync('id', [user], { stdio: 'ignore' }).status !== 0) {
    execFileSync('useradd', ['-M', '-s', '/usr/sbin/nologin', user]);
  }
  execFileSync('chpasswd', { input: `${user}:${password}\n` });
}

export interface DanteOptions {
  /** Require RFC 1929 username/password (checked against system users); else no authentication. */
  readonly auth?: boolean;
  /** Destination ports the rule set blocks (a `socks block` rule before the pass rule). */
  readonly blockPorts?: readonly number[];
}

export async function startDante(options: DanteOptions = {}): Promise<RunningPeer> {
  const dir = tempDir('wsvia-dante-');
  const port = await freePort();
  const logFile = path.join(dir, 'danted.log');
  const blocks = (options.blockPorts ?? [])
    .map((p) => `socks block {\n  from: 127.0.0.0/8 to: 0.0.0.0/0 port = ${p}\n  log: error\n}`)
    .join('\n');
  fs.writeFileSync(
    path.join(dir, 'danted.conf'),
    `logoutput: ${logFile}
internal: 127.0.0.1 port = ${port}
external: 127.0.0.1
socksmethod: ${options.auth ? 'username' : 'none'}
user.privileged: root
user.notprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
${blocks}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect
  log: connect error
}
`,
  );
  const peer = await startPeer('danted', ['-f', path.join(dir, 'danted.conf')], { port });
  return runningPeer(peer, port, dir, { logFile, scheme: 'socks5' });
}

export async function startMicrosocks(): Promise<RunningPeer> {
  const dir = tempDir('wsvia-microsocks-');
  const port = await freePort();
  const peer = await startPeer('microsocks', ['-i', '127.0.0.1', '-p', String(port)], { port });
  return runningPeer(peer, port, dir, { scheme: 'socks5h' });
}

export interface Socks4Request {
  readonly userId: string;
  /** The destination as sent: an IPv4 address, or the 4a name. */
  readonly host: string;
  readonly port: number;
}

export interface Socks4Server {
  readonly port: number;
  readonly requests: readonly Socks4Request[];
  close(): Promise<void>;
}

const MAX_REQUEST = 1024;

function parse(buf: Buffer): { request: Socks4Request; length: number } | 'short' | 'bad' {
  if (buf.length < 9) return buf.length > 0 && buf[0] !== 4 ? 'bad' : 'short';
  if (buf[0] !== 4 || buf[1] !== 1) return 'bad';
  const port = buf.readUInt16BE(2);
  const userEnd = buf.indexOf(0, 8);
  if (userEnd < 0) return 'short';
  const userId = buf.subarray(8, userEnd).toString('latin1');
  const ip = [...buf.subarray(4, 8)];
  if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0) {
    const nameEnd = buf.indexOf(0, userEnd + 1);
    if (nameEnd < 0) return 'short';
    return {
      request: { userId, host: buf.subarray(userEnd + 1, nameEnd).toString('latin1'), port },
      length: nameEnd + 1,
    };
  }
  return { request: { userId, host: ip.join('.'), port }, length: userEnd + 1 };
}

function reply(code: 90 | 91 | 93): Buffer {
  return Buffer.from([0, code, 0, 0, 0, 0, 0, 0]);
}

/** Starts the server on 127.0.0.1; `allowUser`, when given, is the only user id accepted (else 93). */
export async function startSocks4Server(options: { allowUser?: string } = {}): Promise<Socks4Server> {
  const requests: Socks4Request[] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const r = parse(buf);
      if (r === 'short' && buf.length < MAX_REQUEST) return;
      client.removeListener('data', onData);
      if (r === 'short' || r === 'bad') return void client.destroy();
      requests.push(r.request);
      if (options.allowUser !== undefined && r.request.userId !== options.allowUser) {
        return void client.end(reply(93));
      }
      const upstream = net.connect({ host: r.request.host, port: r.request.port });
      open.add(upstream);
      upstream.on('close', () => open.delete(upstream));
      upstream.once('error', () => {
        if (!client.destroyed) client.end(reply(91));
      });
      upstream.once('connect', () => {
        client.write(reply(90));
        const rest = buf.subarray(r.length);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
      });
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
