/**
 * Real proxies on loopback for the route tests: dante (SOCKS4 and SOCKS5, with username/password), microsocks
 * (SOCKS5, no auth, names resolved at the proxy), tinyproxy and squid (HTTP CONNECT). Each is started with
 * test/helpers/process.ts on a port the OS chose, with its config in a temporary directory.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, startPeer, tempDir, type Peer } from './process.js';

export interface RunningProxy {
  readonly port: number;
  readonly dir: string;
  readonly peer: Peer;
  /** The proxy's log so far (empty when it keeps none). */
  log(): string;
  stop(): Promise<void>;
}

/** A system user for dante's username method (it checks passwords with the system's own). Idempotent. */
export function ensureSystemUser(user: string, password: string): void {
  if (spawnSync('id', [user], { stdio: 'ignore' }).status !== 0) {
    execFileSync('useradd', ['-M', '-s', '/usr/sbin/nologin', user]);
  }
  execFileSync('chpasswd', { input: `${user}:${password}\n` });
}

function running(peer: Peer, port: number, dir: string, logFile: string | undefined): RunningProxy {
  return {
    port,
    dir,
    peer,
    log: () => (logFile && fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : peer.output()),
    stop: async () => {
      await peer.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface DanteOptions {
  /** Require RFC 1929 username/password (checked against system users); else no authentication. */
  readonly auth?: boolean;
  /** Destination ports the rule set blocks (a `socks block` rule before the pass rule). */
  readonly blockPorts?: readonly number[];
}

export async function startDante(options: DanteOptions = {}): Promise<RunningProxy> {
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
  return running(peer, port, dir, logFile);
}

export async function startMicrosocks(): Promise<RunningProxy> {
  const dir = tempDir('wsvia-microsocks-');
  const port = await freePort();
  const peer = await startPeer('microsocks', ['-i', '127.0.0.1', '-p', String(port)], { port });
  return running(peer, port, dir, undefined);
}

export async function startTinyproxy(): Promise<RunningProxy> {
  const dir = tempDir('wsvia-tinyproxy-');
  const port = await freePort();
  const logFile = path.join(dir, 'tinyproxy.log');
  fs.writeFileSync(
    path.join(dir, 'tinyproxy.conf'),
    `Port ${port}
Listen 127.0.0.1
Timeout 600
LogFile "${logFile}"
LogLevel Connect
PidFile "${path.join(dir, 'tinyproxy.pid')}"
Allow 127.0.0.1
`,
  );
  fs.chmodSync(dir, 0o777);
  const peer = await startPeer('tinyproxy', ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { port });
  return running(peer, port, dir, logFile);
}

export interface SquidOptions {
  /** NTLM through squid's fake helper (it completes the handshake and accepts any user). */
  readonly ntlm?: boolean;
}

export async function startSquid(options: SquidOptions = {}): Promise<RunningProxy> {
  const dir = tempDir('wsvia-squid-');
  const port = await freePort();
  const auth = options.ntlm
    ? `auth_param ntlm program /usr/lib/squid/ntlm_fake_auth
auth_param ntlm children 2
acl authed proxy_auth REQUIRED
http_access allow authed
`
    : 'acl lo src 127.0.0.1/32\nhttp_access allow lo\n';
  fs.writeFileSync(
    path.join(dir, 'squid.conf'),
    `http_port 127.0.0.1:${port}
${auth}http_access deny all
cache deny all
access_log stdio:${dir}/access.log
cache_log ${dir}/cache.log
pid_filename ${dir}/squid.pid
coredump_dir ${dir}
shutdown_lifetime 1 seconds
`,
  );
  // squid drops privileges to the proxy user, which writes its logs here.
  execFileSync('chown', ['-R', 'proxy', dir]);
  const peer = await startPeer('squid', ['-N', '-f', path.join(dir, 'squid.conf')], {
    port,
    timeoutMs: 30_000,
  });
  return running(peer, port, dir, path.join(dir, 'access.log'));
}
