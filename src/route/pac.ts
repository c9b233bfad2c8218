/**
 * PAC evaluation: a proxy auto-config file's `FindProxyForURL(url, host)` run in a sandbox. The engine is QuickJS
 * compiled to WebAssembly (quickjs-wasi), driven by `pac-resolver`: the script sees the PAC helper functions and
 * nothing of the host (no require, no file system, no network). A script that loops is interrupted at its time
 * budget, one that allocates without end at its memory limit. This is the one engine route/ runs: the functions
 * that would do I/O (`dnsResolve`, `isResolvable`, `myIpAddress`) are supplied by the caller, so this module
 * stays free of sockets and DNS.
 */
import { createPacResolver } from 'pac-resolver';
import { QuickJS } from 'quickjs-wasi';
import { WsviaError } from '../errors.js';
import { ipBytes } from './cidr.js';
import { parsePacResult, type PacResult } from './pac-result.js';

/**
 * The PAC functions that need the network, answered synchronously from what the caller already knows: dial/
 * resolves the target's name before evaluating, so `dnsResolve(host)` answers for it, and other names do not
 * resolve. Synchronous on purpose: an asynchronous host function lets a script's loop run in a promise job, where
 * an interrupt escapes the call (pac-resolver resolves such jobs outside it); and a PAC cannot make the host look
 * up arbitrary names (a way to leak data through DNS).
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
  /** Memory limit of the sandbox in bytes (default 32 MiB). */
  readonly memoryLimit?: number;
  readonly host?: PacHost;
  /** The clock the budget is measured on (default `performance.now`). */
  readonly now?: () => number;
}

/** A compiled PAC file. Call {@link PacScript.dispose} when done: it holds a WebAssembly instance. */
export interface PacScript {
  readonly source: string;
  /** Runs `FindProxyForURL(url, host)` and returns its raw result; `pacHost` answers DNS for this call. */
  findProxyForUrl(url: string, host: string, pacHost?: PacHost): Promise<string>;
  /** Runs it and parses the result into entries to try in order. */
  resolve(url: string, host: string, pacHost?: PacHost): Promise<PacResult & { readonly raw: string }>;
  dispose(): void;
}

/** `isInNet`'s test: the IPv4 address masked equals the pattern masked (the PAC note). */
function inNet(address: string, pattern: string, mask: string): boolean {
  const a = ipBytes(address);
  const p = ipBytes(pattern);
  const m = ipBytes(mask);
  if (!a || !p || !m || a.length !== 4 || p.length !== 4 || m.length !== 4) return false;
  return a.every((byte, i) => (byte & (m[i] as number)) === ((p[i] as number) & (m[i] as number)));
}

function isInterrupt(e: unknown): boolean {
  return e instanceof Error && /interrupted/i.test(e.message);
}

function pacError(source: string, what: string, e: unknown, timeoutMs: number): WsviaError {
  if (isInterrupt(e)) {
    return new WsviaError(
      'CONFIG_INVALID',
      `the PAC file ${source} did not finish ${what} within ${timeoutMs} ms`,
      {
        hop: 'route',
        hint: 'the script loops or is far too slow; fix the PAC file (or raise the budget)',
        cause: e,
      },
    );
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const oom = /out of memory/i.test(message);
  return new WsviaError('CONFIG_INVALID', `the PAC file ${source} failed ${what}: ${message}`, {
    hop: 'route',
    hint: oom
      ? 'the script allocates without bound; fix the PAC file'
      : 'fix the PAC file; wsvia runs it as browsers do, with the standard PAC functions only',
    cause: e,
  });
}

/**
 * Compiles a PAC file in a fresh sandbox. Throws CONFIG_INVALID when the script does not parse, does not define
 * `FindProxyForURL`, or loops at load time.
 *
 * @example
 * const pac = await compilePac('function FindProxyForURL(u, h) { return "PROXY p:3128; DIRECT"; }', { source: 'inline' });
 * (await pac.resolve('wss://echo.example/', 'echo.example')).entries; // PROXY p:3128, then DIRECT
 * pac.dispose();
 */
export async function compilePac(script: string, options: PacOptions): Promise<PacScript> {
  const timeoutMs = options.timeoutMs ?? 1000;
  const now = options.now ?? (() => performance.now());
  let deadline = Number.POSITIVE_INFINITY;
  // The host functions of the call under way (calls are queued one at a time).
  let host: PacHost = options.host ?? {};
  const sandbox = {
    // Without a resolver, names do not resolve: a PAC's isResolvable() is then false, as offline.
    dnsResolve: (name: unknown): string | null => (host.dnsResolve ? host.dnsResolve(String(name)) : null),
    isResolvable: (name: unknown): boolean =>
      host.dnsResolve ? host.dnsResolve(String(name)) !== null : false,
    myIpAddress: (): string => (host.myIpAddress ? host.myIpAddress() : '127.0.0.1'),
    // pac-resolver's own isInNet looks names up itself (I/O, and asynchronous): this one resolves through the host.
    isInNet: (name: unknown, pattern: unknown, mask: unknown): boolean => {
      const text = String(name);
      const address = ipBytes(text) ? text : host.dnsResolve ? host.dnsResolve(text) : null;
      return address === null ? false : inNet(address, String(pattern), String(mask));
    },
    alert: (message?: unknown): void =>
      host.alert?.(typeof message === 'string' ? message : (JSON.stringify(message) ?? '')),
  };
  type Loaded = { vm: QuickJS; find: (url: string, host: string) => Promise<string> };
  const load = async (): Promise<Loaded> => {
    const vm = await QuickJS.create({
      memoryLimit: options.memoryLimit ?? 32 * 1024 * 1024,
      interruptHandler: () => now() > deadline,
    });
    try {
      deadline = now() + timeoutMs;
      const find = createPacResolver(vm, script, {
        sandbox: sandbox,
        filename: options.source,
      });
      return { vm, find };
    } catch (e) {
      vm.dispose();
      throw pacError(options.source, 'to load', e, timeoutMs);
    } finally {
      deadline = Number.POSITIVE_INFINITY;
    }
  };
  // An interrupted QuickJS context is left unusable; the next call loads the script afresh.
  let loaded: Loaded | undefined = await load();
  let disposed = false;
  // One call at a time: the budget is per call, and QuickJS runs one job queue.
  let queue: Promise<unknown> = Promise.resolve();
  const findProxyForUrl = (url: string, h: string, callHost?: PacHost): Promise<string> => {
    const run = async (): Promise<string> => {
      host = callHost ?? options.host ?? {};
      if (disposed) {
        throw new WsviaError('INVALID_ARGUMENT', `the PAC file ${options.source} was disposed`, {
          hop: 'route',
        });
      }
      loaded ??= await load();
      const current = loaded;
      deadline = now() + timeoutMs;
      try {
        const result: unknown = await current.find(url, h);
        return result as string;
      } catch (e) {
        if (isInterrupt(e) || /out of memory/i.test(String(e))) {
          current.vm.dispose();
          loaded = undefined;
        }
        throw pacError(options.source, `for ${url}`, e, timeoutMs);
      } finally {
        deadline = Number.POSITIVE_INFINITY;
      }
    };
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
    dispose: () => {
      if (disposed) return;
      disposed = true;
      loaded?.vm.dispose();
      loaded = undefined;
    },
  };
}
