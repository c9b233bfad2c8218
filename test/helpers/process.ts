/**
 * Starting real peers on loopback for tests: a free port chosen by the OS, a temporary directory, a child
 * process in the foreground that is killed when the test ends, and a wait for its port to accept connections.
 * A peer that cannot start fails the test with its output, never skips it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A port that was free a moment ago on 127.0.0.1 (for peers that cannot bind port 0 themselves). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A port free now and outside the kernel's ephemeral range, for a test whose server binds it later (a reverse
 * tunnel's port, bound by the bridge only after a round trip through a proxy). A port from {@link freePort} is an
 * ephemeral one: meanwhile any test running beside this one may get it as the source port of an outgoing
 * connection, and the bind fails (seen once in CI, a reverse tunnel that never listened). Elsewhere than Linux,
 * {@link freePort}.
 */
export async function freePortOutsideEphemeral(host = '127.0.0.1'): Promise<number> {
  let low: number;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return freePort(host);
  }
  if (!(low > 12_000)) return freePort(host);
  for (let i = 0; i < 50; i++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, host, () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port between 10000 and ${low} in 50 tries`);
}

export function tempDir(prefix = 'wsvia-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Whether `host:port` accepts a TCP connection right now (the connection is closed at once). */
export function acceptsConnection(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Resolves once `host:port` accepts a TCP connection; rejects after `timeoutMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await acceptsConnection(port, host)) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then SIGKILL if the process has not exited 3 s later; resolves once it has exited. */
export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface Peer {
  readonly process: ChildProcess;
  /** Everything the process printed so far (stdout and stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Spawns `command` and waits until `port` accepts connections. If the process exits first, or the port never
 * opens, rejects with the process's output.
 */
export async function startPeer(
  command: string,
  args: readonly string[],
  options: { port: number; host?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Peer> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (b: Buffer): void => {
    if (out.length < 64 * 1024) out += b.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new Error(`cannot start ${command}: ${e.message}`)));
    child.once('exit', (code, signal) =>
      reject(new Error(`${command} exited (${code ?? signal}) before listening:\n${out}`)),
    );
  });
  exited.catch(() => {});
  const peer: Peer = {
    process: child,
    output: () => out,
    stop: () => stopProcess(child),
  };
  try {
    await Promise.race([waitForPort(options.port, options.host, options.timeoutMs), exited]);
  } catch (e) {
    await peer.stop();
    throw e;
  }
  return peer;
}

/** A proxy a test talks to, whether a real one in a child process or one in this process. */
export interface RunningProxy {
  readonly url: string;
  readonly port: number;
  /** What the proxy logged about requests, for proof that traffic passed. */
  log(): string;
  stop(): Promise<void>;
}

/** A peer started from a config in its own temporary directory (a proxy, a reverse proxy, a SOCKS server). */
export interface RunningPeer extends RunningProxy {
  readonly dir: string;
  readonly peer: Peer;
  /** The peer's log file (when it keeps one) then what it printed. */
  log(): string;
  /** Stops the process and removes its directory. */
  stop(): Promise<void>;
}

/** Wraps a started peer whose config, logs and pid file live in `dir` (removed on stop). */
export function runningPeer(
  peer: Peer,
  port: number,
  dir: string,
  options: { logFile?: string; scheme?: string } = {},
): RunningPeer {
  const { logFile, scheme = 'http' } = options;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    dir,
    peer,
    log: () => (logFile && fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '') + peer.output(),
    stop: async () => {
      await peer.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
