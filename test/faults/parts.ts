/**
 * The parts the fault tests and the soak put under faults: `wsvia tunnel -L` as a real process (its listening line
 * names no scheme, so test/helpers/server-cli.ts cannot read it), a `ws` echo server, and the seed of a run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import { WSVIA } from '../helpers/cli.js';
import { stopProcess } from '../helpers/process.js';

/** The seed of this run: WSVIA_FAULT_SEED when given (to reproduce a failure), otherwise a fresh one. */
export function runSeed(): number {
  const given = process.env['WSVIA_FAULT_SEED'];
  return given === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(given);
}

/** The environment of a wsvia child: no proxy variables from the machine's environment. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/_proxy$/i.test(k)) delete env[k];
  return env;
}

export interface RunningTunnel {
  readonly port: number;
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `wsvia tunnel -L 127.0.0.1:0 ...args` and waits for its listening line. */
export function startTunnelCli(args: readonly string[], timeoutMs = 15_000): Promise<RunningTunnel> {
  const child = spawn(process.execPath, [WSVIA, 'tunnel', '-L', '127.0.0.1:0', ...args], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (b: Buffer): void => {
    if (out.length < 256 * 1024) out += b.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stopProcess(child).catch(() => {});
      reject(new Error(`wsvia tunnel did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const exited = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`wsvia tunnel exited (${code}) before listening:\n${out}`));
    };
    child.once('exit', exited);
    const onData = (): void => {
      const m = /wsvia tunnel listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', exited);
      child.stdout.off('data', onData);
      resolve({ port: Number(m[1]), process: child, output: () => out, stop: () => stopProcess(child) });
    };
    child.stdout.on('data', onData);
  });
}

export interface WsEcho {
  readonly port: number;
  close(): Promise<void>;
}

/** A `ws` server on 127.0.0.1:0 that sends every message back as it came, and answers a close in kind. */
export async function startWsEcho(): Promise<WsEcho> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
