/**
 * The servers under comparison, each started in the foreground on 127.0.0.1 with a port the OS chose, configured
 * as their own documentation says (recipes in PEERS.md), through the test helpers' startPeer. Every peer is a
 * process tree whose root pid the orchestrator reads /proc from.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startPeer, tempDir, type Peer } from '../test/helpers/process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js: the built `wsvia` command. */
export const WSVIA_MAIN = path.resolve(here, '../src/cli/main.js');
const NODE_PROXY = path.resolve(here, 'node-proxy.js');

export interface BenchPeer {
  readonly name: string;
  /** Where clients connect. */
  readonly port: number;
  /** Root of the process tree that is measured. */
  readonly pid: number;
  /** How it was configured, for the report. */
  readonly config: string;
  stop(): Promise<void>;
}

function wrap(name: string, port: number, peer: Peer, config: string, dir?: string): BenchPeer {
  const pid = peer.process.pid;
  if (pid === undefined) throw new Error(`${name}: no pid`);
  return {
    name,
    port,
    pid,
    config,
    stop: async () => {
      await peer.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type WsviaPart = 'proxy' | 'gateway' | 'bridge';

/**
 * The `wsvia` entry point that runs `part`: this build's, unless `WSVIA_BENCH_<PART>_MAIN` names another build's
 * main.js (to measure a part from a branch that is not merged yet; the tunnel comes with the bridge).
 */
export function wsviaMain(part: WsviaPart): string {
  return process.env[`WSVIA_BENCH_${part.toUpperCase()}_MAIN`] ?? WSVIA_MAIN;
}

/** Which build ran a part, for the report (empty for this build). */
function buildNote(part: WsviaPart): string {
  const main = wsviaMain(part);
  if (main === WSVIA_MAIN) return '';
  // A branch build made as docs/bench.md shows leaves its commit and branch name in COMMIT at its root.
  let commit = '';
  try {
    const [sha, branch] = fs
      .readFileSync(path.resolve(main, '../../../../COMMIT'), 'utf8')
      .trim()
      .split('\n');
    commit = `, branch ${branch ?? '?'} at ${sha ?? '?'}`;
  } catch {
    // no record of where it came from
  }
  return ` (build: ${main}${commit})`;
}

/** Whether the `wsvia` that runs `part` has `command` yet (parts are merged in as their branches land). */
export function wsviaHas(command: string, part: WsviaPart): boolean {
  try {
    const help = execFileSync(process.execPath, [wsviaMain(part), '--help'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    return new RegExp(`^\\s+${command}\\s`, 'm').test(help);
  } catch {
    return false;
  }
}

/** Node's version and the versions the Debian peers report, for the report's machine section. */
export function peerVersions(): Record<string, string> {
  const v = (cmd: string, args: string[], re: RegExp): string => {
    try {
      const r = spawnText(cmd, args);
      return re.exec(r)?.[1] ?? '?';
    } catch {
      return 'missing';
    }
  };
  return {
    node: process.version,
    squid: v('squid', ['-v'], /Version (\S+)/),
    tinyproxy: v('tinyproxy', ['-v'], /tinyproxy (\S+)/),
    nginx: v('nginx', ['-v'], /nginx\/(\S+)/),
    haproxy: v('haproxy', ['-v'], /version (\S+)/),
    websockify: v('dpkg-query', ['-W', '-f', '${Version}', 'websockify'], /(\S+)/),
    proxy: readPackageVersion('proxy'),
    'proxy-chain': readPackageVersion('proxy-chain'),
    ws: readPackageVersion('ws'),
  };
}

function spawnText(cmd: string, args: string[]): string {
  // Some print their version on stderr (nginx -v): merge both.
  return execFileSync('sh', ['-c', `${cmd} ${args.map((a) => `'${a}'`).join(' ')} 2>&1`], {
    encoding: 'utf8',
    timeout: 10_000,
  });
}

function readPackageVersion(name: string): string {
  try {
    const p = path.resolve(here, '../../node_modules', name, 'package.json');
    return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------- forward proxies (issue 3)

export async function startSquid(): Promise<BenchPeer> {
  const dir = tempDir('wsvia-bench-squid-');
  fs.chmodSync(dir, 0o777); // squid drops privileges to the `proxy` user and writes its logs here
  const port = await freePort();
  const config = [
    `http_port 127.0.0.1:${port}`,
    'acl lo src 127.0.0.1/32',
    'http_access allow lo',
    'http_access deny all',
    'cache deny all',
    'access_log none',
    `cache_log ${dir}/cache.log`,
    `pid_filename ${dir}/squid.pid`,
    `coredump_dir ${dir}`,
    'max_filedescriptors 20000',
    'shutdown_lifetime 1 seconds',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'squid.conf'), `${config}\n`, { mode: 0o644 });
  const peer = await startPeer('squid', ['-N', '-f', path.join(dir, 'squid.conf')], {
    port,
    timeoutMs: 30_000,
  });
  return wrap(
    'squid',
    port,
    peer,
    'squid -N, no auth, no cache, access_log none, max_filedescriptors 20000',
    dir,
  );
}

export async function startTinyproxy(): Promise<BenchPeer> {
  const dir = tempDir('wsvia-bench-tinyproxy-');
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 600',
    `LogFile "${dir}/tinyproxy.log"`,
    'LogLevel Critical',
    `PidFile "${dir}/tinyproxy.pid"`,
    'Allow 127.0.0.1',
    // Its default of 100 clients would refuse the idle-tunnel and concurrency runs.
    'MaxClients 6000',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'tinyproxy.conf'), `${config}\n`);
  const peer = await startPeer('tinyproxy', ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { port });
  return wrap('tinyproxy', port, peer, 'tinyproxy -d, MaxClients 6000, LogLevel Critical', dir);
}

export async function startNodeProxy(which: 'proxy' | 'proxy-chain'): Promise<BenchPeer> {
  const port = await freePort();
  const peer = await startPeer(process.execPath, [NODE_PROXY, which, String(port)], { port });
  const config =
    which === 'proxy'
      ? 'createProxy(http.createServer()) (proxy README)'
      : 'new Server({ port }) (proxy-chain README)';
  return wrap(which === 'proxy' ? 'proxy (npm)' : 'proxy-chain', port, peer, config);
}

/** `wsvia proxy` with its default relay (auto: splice where the addon loads), or the one named. */
export async function startWsviaProxy(relay?: 'js' | 'splice'): Promise<BenchPeer> {
  const port = await freePort();
  const args = [
    wsviaMain('proxy'),
    'proxy',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    // The targets are on loopback and on high ports: allow them, as one would for a lab.
    '--allow-private',
    '--allow-ports',
    '1-65535',
    '--max-tunnels',
    '20000',
    '--max-tunnels-per-client',
    '20000',
    ...(relay ? ['--relay', relay] : []),
  ];
  const peer = await startPeer(process.execPath, args, { port });
  return wrap(
    relay ? `wsvia proxy --relay ${relay}` : 'wsvia proxy',
    port,
    peer,
    `wsvia ${args.slice(1).join(' ')}${buildNote('proxy')}`,
  );
}

// ---------------------------------------------------------------- WebSocket gateways (issue 6)

export async function startNginx(upstreamPort: number): Promise<BenchPeer> {
  const dir = tempDir('wsvia-bench-nginx-');
  const port = await freePort();
  // The WebSocket proxying recipe of nginx's docs (http://nginx.org/en/docs/http/websocket.html), with timeouts
  // long enough that idle WebSockets stay open through the run.
  const config = `daemon off;
worker_processes auto;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log crit;
events { worker_connections 10000; }
http {
  access_log off;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), config);
  const peer = await startPeer('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { port });
  return wrap('nginx', port, peer, 'nginx, worker_processes auto (2), WebSocket recipe of its docs', dir);
}

export async function startHaproxy(upstreamPort: number): Promise<BenchPeer> {
  const dir = tempDir('wsvia-bench-haproxy-');
  const port = await freePort();
  const config = `global
  maxconn 9000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout tunnel 1h
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server echo 127.0.0.1:${upstreamPort}
`;
  fs.writeFileSync(path.join(dir, 'haproxy.cfg'), config);
  const peer = await startPeer('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { port });
  return wrap('HAProxy', port, peer, 'haproxy -db, mode http, timeout tunnel 1h, default threads (2)', dir);
}

export async function startWsviaGateway(upstreamPort: number, relay?: 'js' | 'native'): Promise<BenchPeer> {
  const port = await freePort();
  const args = [
    wsviaMain('gateway'),
    'gateway',
    '--listen',
    `127.0.0.1:${port}`,
    '--route',
    `/=ws://127.0.0.1:${upstreamPort}`,
    // Every bench connection comes from 127.0.0.1: lift the per-client default (500), as for the proxy.
    '--max-connections',
    '20000',
    '--max-per-client',
    '20000',
    ...(relay ? ['--relay', relay] : []),
  ];
  const peer = await startPeer(process.execPath, args, { port });
  return wrap(
    relay ? `wsvia gateway --relay ${relay}` : 'wsvia gateway',
    port,
    peer,
    `wsvia ${args.slice(1).join(' ')}${buildNote('gateway')}`,
  );
}

// ---------------------------------------------------------------- WebSocket -> TCP bridges (issue 7)

export async function startWebsockify(targetPort: number): Promise<BenchPeer> {
  const port = await freePort();
  const peer = await startPeer('websockify', [`127.0.0.1:${port}`, `127.0.0.1:${targetPort}`], { port });
  return wrap('websockify', port, peer, 'websockify 127.0.0.1:PORT 127.0.0.1:TARGET (forks per connection)');
}

export async function startWsviaBridge(targetPort: number): Promise<BenchPeer> {
  const port = await freePort();
  const args = [
    wsviaMain('bridge'),
    'bridge',
    '--listen',
    `127.0.0.1:${port}`,
    '--target',
    `127.0.0.1:${targetPort}`,
    // Every bench connection comes from 127.0.0.1: lift the per-client default (500), as for the proxy.
    '--max-connections',
    '20000',
    '--max-per-client',
    '20000',
  ];
  const peer = await startPeer(process.execPath, args, { port });
  return wrap('wsvia bridge', port, peer, `wsvia ${args.slice(1).join(' ')}${buildNote('bridge')}`);
}

/** `wsvia tunnel -L PORT URL`, optionally through an HTTP proxy. */
export async function startWsviaTunnel(bridgeUrl: string, proxyUrl?: string): Promise<BenchPeer> {
  const port = await freePort();
  const args = [
    wsviaMain('bridge'),
    'tunnel',
    '-L',
    `127.0.0.1:${port}`,
    bridgeUrl,
    ...(proxyUrl !== undefined ? ['--proxy', proxyUrl] : []),
  ];
  const peer = await startPeer(process.execPath, args, { port, env: { ...process.env, NO_PROXY: '' } });
  return wrap(
    proxyUrl ? 'wsvia tunnel via squid' : 'wsvia tunnel',
    port,
    peer,
    `wsvia ${args.slice(1).join(' ')}${buildNote('bridge')}`,
  );
}

// ---------------------------------------------------------------- the shared targets

export interface Targets {
  readonly sinkPort: number;
  readonly echoPort: number;
  readonly wsPort: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts bench/targets.js (TCP sink, TCP echo, WebSocket echo) in its own process. */
export function startTargets(): Promise<Targets> {
  const child = spawn(process.execPath, [path.resolve(here, 'targets.js')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`targets exited (${code}) before listening`)));
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const ports = JSON.parse(out.slice(0, nl)) as { sinkPort: number; echoPort: number; wsPort: number };
      child.removeAllListeners('exit');
      resolve({
        ...ports,
        pid: child.pid as number,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
