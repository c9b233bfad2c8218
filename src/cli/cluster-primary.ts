/**
 * The primary of a server run as `--workers N` (`proxy`, `gateway`), in one place: fork, announce once every worker
 * listens, print the first start failure as the one line a single process would print, pass signals on, kill what
 * outlives the drain, and decide the exit code.
 *
 * The exit code does not depend on the order in which node:cluster reports a worker's last message and its exit:
 * a worker is counted as gone only once it has both exited and closed its IPC channel (every message it sent has
 * been read by then), and a primary whose workers all ended before it announced never exits 0.
 */
import cluster, { type ClusterSettings, type Worker } from 'node:cluster';
import { EXIT_CODES } from '../errors.js';
import type { ClusterAdmin } from '../serve/cluster-admin.js';
import { startFailure } from './server-lifecycle.js';

/** What a worker sends once it listens; `payload` is what {@link PrimaryOptions.announce} is given. */
interface Listening {
  readonly wsviaListening: unknown;
}

/** In a `--workers` child: tells the primary this worker listens. */
export function tellPrimaryListening(payload: unknown): void {
  const message: Listening = { wsviaListening: payload };
  // The primary may be gone already (it is stopping); the exit path deals with that.
  process.send?.(message, undefined, {}, () => {});
}

function listeningPayload(m: unknown): { payload: unknown } | undefined {
  if (typeof m !== 'object' || m === null || !('wsviaListening' in m)) return undefined;
  return { payload: (m as Listening).wsviaListening };
}

/** How long after a worker's exit its IPC channel's end is waited for (it comes within a turn or two). */
const CHANNEL_GRACE_MS = 500;

export interface PrimaryOptions {
  readonly command: 'proxy' | 'gateway';
  readonly workers: number;
  /** The admin listener the primary serves for all workers, already listening. */
  readonly admin?: ClusterAdmin | undefined;
  readonly settings: ClusterSettings;
  /** SIGHUP is passed on to every worker (the gateway reloads its configuration). */
  readonly forwardSighup: boolean;
  /** Workers still running this long after SIGINT/SIGTERM are killed (their own drain has a limit below it). */
  readonly killAfterMs: number;
  /** Called once, when every worker listens, with each worker's payload in fork order. */
  readonly announce: (payloads: readonly unknown[]) => void;
}

/** Runs the primary until every worker has ended; resolves with the process's exit code. */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  return new Primary(options).run();
}

class Primary {
  readonly #o: PrimaryOptions;
  readonly #workers: Worker[] = [];
  readonly #payloads = new Map<number, unknown>();
  #announced = false;
  /** The exit code of the first start failure a worker reported, before anything was announced. */
  #failed: number | undefined;
  /** How the first worker that ended on its own (no signal from here) ended: its code, 1 for a signal. */
  #crashed: number | undefined;
  #stopping = false;
  /** Kills what outlives the drain. */
  #killer: NodeJS.Timeout | undefined;

  constructor(options: PrimaryOptions) {
    this.#o = options;
  }

  async run(): Promise<number> {
    cluster.setupPrimary(this.#o.settings);
    // Nothing else may keep this process alive while it waits: the IPC channel of a killed worker does not, and
    // the process would exit 0 before the channel's end is read (and before the exit code is decided).
    const alive = setInterval(() => {}, 3_600_000);
    const ended: Promise<void>[] = [];
    for (let i = 0; i < this.#o.workers; i++) ended.push(this.#fork(i));
    const onHup = (): void => this.#signalAll('SIGHUP');
    if (this.#o.forwardSighup) process.on('SIGHUP', onHup);
    const onStop = (signal: NodeJS.Signals): void => this.#stop(signal);
    // A second signal is passed on too (a worker may treat it as "stop now").
    process.on('SIGINT', onStop).on('SIGTERM', onStop);
    await Promise.all(ended);
    clearInterval(alive);
    process.off('SIGHUP', onHup).off('SIGINT', onStop).off('SIGTERM', onStop);
    clearTimeout(this.#killer);
    await this.#o.admin?.close();
    return this.#exitCode();
  }

  #fork(index: number): Promise<void> {
    const w = cluster.fork();
    this.#workers.push(w);
    // A message to a worker that already exited fails with EPIPE: the exit handler deals with the exit.
    w.on('error', () => {});
    w.on('message', (m: unknown) => this.#onMessage(index, m));
    // Every message a worker sent has been read once its IPC channel is closed; a channel whose end is not seen
    // within CHANNEL_GRACE_MS of the exit is not waited for longer.
    const disconnected = new Promise<void>((resolve) => {
      let grace: NodeJS.Timeout | undefined;
      w.once('disconnect', () => {
        clearTimeout(grace);
        resolve();
      });
      // Not `isConnected()`: a channel with a handle in flight to a worker that died (round-robin gives it
      // connections until its exit is seen) reads false there and never emits 'disconnect' (Node 20).
      w.process.once('exit', () => (grace = setTimeout(resolve, CHANNEL_GRACE_MS)));
    });
    const exited = new Promise<void>((resolve) => {
      w.process.once('exit', (code: number | null) => {
        this.#onExit(index, code);
        resolve();
      });
    });
    return Promise.all([exited, disconnected]).then(() => undefined);
  }

  #onMessage(index: number, m: unknown): void {
    const failure = startFailure(m);
    if (failure) {
      if (this.#announced || this.#failed !== undefined) return;
      // A worker could not start (a port in use): the others would fail alike; one line, and stop.
      this.#failed = failure.code;
      process.stderr.write(failure.text);
      this.#signalAll('SIGTERM');
      return;
    }
    const listening = listeningPayload(m);
    if (!listening || this.#announced || this.#failed !== undefined) return;
    this.#payloads.set(index, listening.payload);
    if (this.#payloads.size < this.#o.workers) return;
    this.#announced = true;
    this.#o.announce([...this.#payloads.entries()].sort(([a], [b]) => a - b).map(([, p]) => p));
  }

  #onExit(index: number, code: number | null): void {
    // A worker killed by a signal not sent from here (the OOM killer) failed as much as one that exited non-zero.
    if (code !== 0 && !this.#stopping) this.#crashed ??= code ?? EXIT_CODES.failure;
    if (this.#stopping || this.#failed !== undefined) return;
    if (!this.#announced) {
      // One worker ended before the server was up: the server cannot come up as asked.
      this.#signalAll('SIGTERM');
      return;
    }
    const left = this.#workers.filter((w) => !w.isDead()).length;
    process.stderr.write(
      `wsvia ${this.#o.command}: worker ${index + 1} exited (${code === null ? 'killed' : `code ${code}`}), ${left} still serving\n`,
    );
  }

  #stop(signal: NodeJS.Signals): void {
    this.#signalAll(signal);
    if (this.#stopping) return;
    this.#stopping = true;
    this.#o.admin?.drain();
    this.#killer = setTimeout(() => {
      const left = this.#workers.filter((w) => !w.isDead()).length;
      process.stderr.write(
        `wsvia ${this.#o.command}: ${left} workers still running ${this.#o.killAfterMs / 1000} s after ${signal}: killed\n`,
      );
      this.#signalAll('SIGKILL');
    }, this.#o.killAfterMs);
    this.#killer.unref();
  }

  #signalAll(signal: NodeJS.Signals): void {
    for (const w of this.#workers) if (!w.isDead()) w.process.kill(signal);
  }

  #exitCode(): number {
    if (this.#failed !== undefined) return this.#failed;
    if (this.#announced || this.#stopping) return this.#crashed ?? EXIT_CODES.ok;
    process.stderr.write(`wsvia ${this.#o.command}: the workers ended before listening\n`);
    return this.#crashed ?? EXIT_CODES.failure;
  }
}
