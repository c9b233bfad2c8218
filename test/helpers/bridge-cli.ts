/** Starts the built `wsvia bridge` CLI as a user would, and waits for its "listening on" line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { WSVIA } from './cli.js';
import { stopProcess } from './process.js';

export interface RunningBridge {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export function startBridgeCli(args: readonly string[], timeoutMs = 15_000): Promise<RunningBridge> {
  const child = spawn(process.execPath, [WSVIA, 'bridge', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (b: Buffer): void => {
    if (out.length < 256 * 1024) out += b.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const stop = (): Promise<void> => stopProcess(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop().catch(() => {});
      reject(new Error(`wsvia bridge did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wsvia bridge exited (${code}) before listening:\n${out}`));
    });
    child.stderr.on('data', () => {
      const m = /wsvia bridge listening on (wss?:\/\/\S+:(\d+))\n/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ url: m[1] as string, port: Number(m[2]), process: child, output: () => out, stop });
    });
  });
}
