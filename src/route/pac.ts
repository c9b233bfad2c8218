/**
 * PAC evaluation: a proxy auto-config file's `FindProxyForURL(url, host)` run in a sandbox. The engine is QuickJS
 * compiled to WebAssembly (quickjs-wasi), driven by `pac-resolver`: the script sees the PAC helper functions and
 * nothing of the host (no require, no file system, no network). A PAC file may come from the network (WPAD), so
 * the sandbox runs in a worker thread of its own, with memory limits, and this thread keeps the deadline: at the
 * budget the worker is terminated, whatever the script is doing, and the event loop here never waits on it. The
 * functions that would do I/O (`dnsResolve`, `isResolvable`, `myIpAddress`) are supplied by the caller, so this
 * module stays free of sockets and DNS.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-script.js';
import { WsviaError } from '../errors.js';
import { parsePacResult, type PacResult } from './pac-result.js';
import { ANSWER_HEADER, type FromPacWorker, type PacWorkerData, type ToPacWorker } from './pac-messages.js';

/**
 * The PAC functions that need the network, answered synchronously from what the caller already knows: dial/
 * resolves the target's name before evaluating, so `dnsResolve(host)` answers for it, and other names do not
 * resolve. Synchronous on purpose: a PAC cannot make the host look up arbitrary names (a way to leak data through
 * DNS), and a script's call waits only on an answer already at hand.
 */
export interface PacHost {
  /** `dnsResolve(host)`: an IPv4 address, or null when the name does not resolve (or is unknown). */
  readonly dnsResolve?: (host: string) => string | null;
  /** `myIpAddress()`: this machine's address (browsers give the one of the default route). */
  readonly myIpAddress?: () => string;
  /** Receives what the script passes to `alert()` (browsers log it). */
  readonly alert?: (message: string) => void;
}

export interface PacOptions {
  /** Where the PAC came from (a URL or a path), for messages. */
  readonly source: string;
  /** Time budget for compiling the script and for each call, in ms (default 1000). */
  readonly timeoutMs?: number;
  /** Memory limit of the QuickJS sandbox in bytes (default 32 MiB). */
  readonly memoryLimit?: number;
  readonly host?: PacHost;
}

/** A compiled PAC file. Call {@link PacScript.dispose} when done: it holds a worker thread. */
export interface PacScript {
  readonly source: string;
  /** Runs `FindProxyForURL(url, host)` and returns its raw result; `pacHost` answers DNS for this call. */
  findProxyForUrl(url: string, host: string, pacHost?: PacHost): Promise<string>;
  /** Runs it and parses the result into entries to try in order. */
  resolve(url: string, host: string, pacHost?: PacHost): Promise<PacResult & { readonly raw: string }>;
  /** Frees the WebAssembly instance; the script cannot be used after. */
  dispose(): void;
}

/** The worker's own JavaScript heap (pac-resolver, the QuickJS bindings): a backstop to QuickJS's limit. */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 };
/**
 * QuickJS's memory limit does not see every allocation (ArrayBuffers and long strings grow its WebAssembly memory
 * far past it, and that memory is outside the worker's heap limits), and its interrupt handler runs too seldom to
 * watch: so while a script runs, the process's resident size is watched, and a growth past the sandbox's limit
 * plus this slack ends the worker as out of memory.
 */
const RSS_SLACK = 64 * 1024 * 1024;
const RSS_EVERY_MS = 20;
/** Starting a worker and its QuickJS instance, before the script runs: not the script's time, so not its budget. */
const START_BUDGET_MS = 10_000;

function pacError(source: string, what: string, e: unknown, timeoutMs: number): WsviaError {
  if (e === 'timeout') {
    return new WsviaError(
      'CONFIG_INVALID',
      `the PAC file ${source} did not finish ${what} within ${timeoutMs} ms`,
      {
        hop: 'route',
        hint: 'the script loops, allocates without end or is far too slow; fix the PAC file (or raise the budget)',
      },
    );
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const oom = isOutOfMemory(e);
  return new WsviaError('CONFIG_INVALID', `the PAC file ${source} failed ${what}: ${message}`, {
    hop: 'route',
    hint: oom
      ? 'the script allocates without bound; fix the PAC file'
      : 'fix the PAC file; wsvia runs it as browsers do, with the standard PAC functions only',
    ...(e instanceof Error ? { cause: e } : {}),
  });
}

function mib(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MiB`;
}

function isOutOfMemory(e: unknown): boolean {
  return (
    (e instanceof Error && /out of memory/i.test(e.message)) ||
    (e as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
  );
}

/**
 * One PAC script in its worker thread, one call at a time. A worker that passed its deadline, ran out of memory
 * or died is terminated, and the next call starts a fresh one (loading the script again, within its own budget).
 */
class PacThread {
  readonly #script: string;
  readonly #o: PacOptions;
  readonly #timeoutMs: number;
  readonly #memoryLimit: number;
  readonly #answer = new SharedArrayBuffer(ANSWER_HEADER + 1024);
  #worker: Worker | undefined;
  #host: PacHost;
  #nextId = 0;
  #disposed = false;

  constructor(script: string, options: PacOptions) {
    this.#script = script;
    this.#o = options;
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#memoryLimit = options.memoryLimit ?? 32 * 1024 * 1024;
    this.#host = options.host ?? {};
  }

  async load(): Promise<void> {
    const data: PacWorkerData = {
      script: this.#script,
      source: this.#o.source,
      memoryLimit: this.#memoryLimit,
      answer: this.#answer,
    };
    const worker = startWorker('pac-worker.js', () => new URL('./pac-worker.js', import.meta.url), {
      workerData: data,
      resourceLimits: WORKER_LIMITS,
    });
    // Errors are handled by the exchange under way; this keeps one between exchanges from being thrown.
    worker.on('error', () => {});
    worker.unref();
    this.#worker = worker;
    const started = await this.#exchange(
      'to start',
      undefined,
      (x) => x.type === 'started' || x.type === 'error',
      START_BUDGET_MS,
    );
    const m =
      started.type === 'error'
        ? started
        : await this.#exchange('to load', undefined, (x) => x.type === 'loaded' || x.type === 'error');
    if (m.type === 'error') {
      this.#kill();
      throw pacError(this.#o.source, 'to load', Object.assign(new Error(m.message), { name: m.name }), 0);
    }
  }

  async find(url: string, host: string, callHost: PacHost | undefined): Promise<unknown> {
    if (this.#disposed) {
      throw new WsviaError('INVALID_ARGUMENT', `the PAC file ${this.#o.source} was disposed`, {
        hop: 'route',
      });
    }
    if (!this.#worker) await this.load();
    this.#host = callHost ?? this.#o.host ?? {};
    const id = this.#nextId++;
    const request: ToPacWorker = { id, url, host };
    const m = await this.#exchange(
      `for ${url}`,
      (w) => w.postMessage(request),
      (x) => (x.type === 'result' || x.type === 'error') && x.id === id,
    );
    if (m.type === 'result') return m.value;
    const e = Object.assign(new Error(m.type === 'error' ? m.message : 'no answer'), {
      name: m.type === 'error' ? m.name : 'Error',
    });
    // A QuickJS context that ran out of memory is left unusable.
    if (isOutOfMemory(e)) this.#kill();
    throw pacError(this.#o.source, `for ${url}`, e, this.#timeoutMs);
  }

  dispose(): void {
    this.#disposed = true;
    this.#kill();
  }

  /** Sends (if anything), then waits for the message `wanted` accepts, answering host questions meanwhile. */
  #exchange(
    what: string,
    send: ((w: Worker) => void) | undefined,
    wanted: (m: FromPacWorker) => boolean,
    budgetMs = this.#timeoutMs,
  ): Promise<FromPacWorker> {
    const worker = this.#worker;
    const source = this.#o.source;
    if (!worker) return Promise.reject(pacError(source, what, new Error('the PAC worker is gone'), 0));
    return new Promise<FromPacWorker>((resolve, reject) => {
      const fail = (e: unknown): void => {
        finish();
        this.#kill();
        reject(pacError(source, what, e, budgetMs));
      };
      const timer = setTimeout(() => fail('timeout'), budgetMs);
      const rssCeiling = process.memoryUsage.rss() + this.#memoryLimit + RSS_SLACK;
      const watch = setInterval(() => {
        if (process.memoryUsage.rss() <= rssCeiling) return;
        const e = new Error(
          `out of memory (the process grew by more than ${mib(this.#memoryLimit + RSS_SLACK)})`,
        );
        fail(Object.assign(e, { name: 'InternalError' }));
      }, RSS_EVERY_MS);
      watch.unref();
      const onMessage = (m: FromPacWorker): void => {
        if (m.type === 'host') return this.#answerHost(m.fn, m.arg);
        if (m.type === 'alert') return this.#host.alert?.(m.message);
        if (!wanted(m)) return;
        finish();
        resolve(m);
      };
      const onExit = (code: number): void => fail(new Error(`the PAC worker exited (${code})`));
      const finish = (): void => {
        clearTimeout(timer);
        clearInterval(watch);
        worker.off('message', onMessage);
        worker.off('error', fail);
        worker.off('exit', onExit);
        worker.unref();
      };
      worker.ref();
      worker.on('message', onMessage);
      worker.once('error', fail);
      worker.once('exit', onExit);
      send?.(worker);
    });
  }

  /** Writes the answer where the sleeping worker reads it, then wakes it. */
  #answerHost(fn: 'dnsResolve' | 'myIpAddress', arg: string): void {
    let value: string | null;
    try {
      value =
        fn === 'dnsResolve'
          ? (this.#host.dnsResolve?.(arg) ?? null)
          : (this.#host.myIpAddress?.() ?? '127.0.0.1');
    } catch {
      value = null;
    }
    let json = Buffer.from(JSON.stringify(value), 'utf8');
    if (json.length > this.#answer.byteLength - ANSWER_HEADER) json = Buffer.from('null');
    new Uint8Array(this.#answer, ANSWER_HEADER).set(json);
    const slots = new Int32Array(this.#answer, 0, 2);
    Atomics.store(slots, 1, json.length);
    Atomics.store(slots, 0, 1);
    Atomics.notify(slots, 0);
  }

  #kill(): void {
    const w = this.#worker;
    this.#worker = undefined;
    if (w) void w.terminate().catch(() => {});
  }
}

/**
 * Compiles a PAC file in a fresh sandbox. Throws CONFIG_INVALID when the script does not parse, does not define
 * `FindProxyForURL`, or does not load within its budget.
 *
 * @example
 * const pac = await compilePac('function FindProxyForURL(u, h) { return "PROXY p:3128; DIRECT"; }', { source: 'inline' });
 * (await pac.resolve('wss://echo.example/', 'echo.example')).entries; // PROXY p:3128, then DIRECT
 * pac.dispose();
 */
export async function compilePac(script: string, options: PacOptions): Promise<PacScript> {
  const thread = new PacThread(script, options);
  await thread.load();
  // One call at a time: the budget is per call, and the worker answers one call at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const findProxyForUrl = (url: string, h: string, callHost?: PacHost): Promise<string> => {
    const run = async (): Promise<string> => (await thread.find(url, h, callHost)) as string;
    const p = queue.then(run, run);
    queue = p.catch(() => {});
    return p;
  };
  return {
    source: options.source,
    findProxyForUrl,
    resolve: async (url, h, callHost) => {
      const raw: unknown = await findProxyForUrl(url, h, callHost);
      try {
        return { ...parsePacResult(raw), raw: String(raw) };
      } catch (e) {
        if (e instanceof WsviaError) {
          throw new WsviaError(e.code, `${e.summary} for ${url} (PAC ${options.source})`, {
            hop: 'route',
            ...(e.hint === undefined ? {} : { hint: e.hint }),
            ...(e.details === undefined ? {} : { details: e.details }),
          });
        }
        throw e;
      }
    },
    dispose: () => thread.dispose(),
  };
}
