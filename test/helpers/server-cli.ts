/**
 * Starts a built `wsvia` server command (`proxy`, `gateway`, `bridge`, `echo`) as a user would and waits for its
 * "listening on" line (on stderr: stdout is kept for `--access-log -`); or runs one that should fail at start and
 * returns what it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { WSVIA } from './cli.js';
import { stopProcess } from './process.js';

export interface RunningServer {
  readonly process: ChildProcess;
  /** The URL of the "listening on" line. */
  readonly url: string;
  readonly port: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once the process exited. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

const LISTENING = /wsvia \w+ listening on (\w+:\/\/[^\s/]+:(\d+))/;

export function startServerCli(
  command: string,
  args: readonly string[],
  timeoutMs = 15_000,
): Promise<RunningServer> {
  const child = spawn(process.execPath, [WSVIA, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  // A test may close its end of stdout to see the server survive EPIPE.
  child.stdout.on('error', () => {});
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stopProcess(child).catch(() => {});
      reject(new Error(`wsvia ${command} did not start within ${timeoutMs} ms:\n${out}${err}`));
    }, timeoutMs);
    exited.then(
      (code) => {
        clearTimeout(timer);
        reject(new Error(`wsvia ${command} exited (${code}) before listening:\n${out}${err}`));
      },
      (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))),
    );
    const onData = (): void => {
      const m = LISTENING.exec(err);
      if (!m) return;
      clearTimeout(timer);
      child.stderr.off('data', onData);
      resolve({
        process: child,
        url: m[1] as string,
        port: Number(m[2]),
        stdout: () => out,
        stderr: () => err,
        exited,
        stop: () => stopProcess(child),
      });
    };
    child.stderr.on('data', onData);
  });
}
