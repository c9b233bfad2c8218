/** `wsvia tunnel`: TCP -> WebSocket (-L, --stdio) and reverse (-R), through every route `wsvia connect` knows. */
import { Duplex } from 'node:stream';
import type { PumpResult } from '../bridge/pump.js';
import {
  carry,
  DEFAULT_LINGER,
  startLocalTunnel,
  startReverseTunnel,
  type TunnelOptions,
} from '../bridge/tunnel.js';
import type { ConnectOptions } from '../client/connect.js';
import { EXIT_CODES, exitCodeFor, isWsviaError } from '../errors.js';
import { formatTraceEvent } from '../observe/format-trace.js';
import { parseAuthority, type Authority } from '../protocol/authority.js';
import { OPTIONS as CONNECT_OPTIONS, parseConnectArgs, SESSION_FLAGS } from './connect.js';
import { parseListen } from './listen-address.js';
import {
  ALL_EXIT_CODES,
  exitCodesHelp,
  formatError,
  reportError,
  reportUsage,
  UsageError,
} from './output.js';

export const usage = `usage: wsvia tunnel -L [BIND:]PORT[:HOST:PORT] URL [options]
       wsvia tunnel -R [BIND:]PORT:HOST:PORT URL [options]
       wsvia tunnel -L 5432:db:5432 -L 6379:cache:6379 -R 8022:127.0.0.1:22 URL [options]
       wsvia tunnel --stdio URL [--target HOST:PORT] [options]

Carries TCP over WebSockets to a bridge (wsvia bridge, or websockify) at URL, directly or through a proxy.

  -L [BIND:]PORT             listen on BIND:PORT (default 127.0.0.1); each connection rides its own WebSocket
                             to the bridge, whose route decides the target
  -L [BIND:]PORT:HOST:PORT   ... and ask the bridge for HOST:PORT (it must allow it: --allow-target)
  -R [BIND:]PORT:HOST:PORT   reverse: the bridge listens on BIND:PORT on its side (its --allow-reverse; BIND
                             default 127.0.0.1) and each connection there is carried to HOST:PORT on this side;
                             the control connection pings and reconnects with backoff
                             -L and -R repeat and mix: each has its own listener, all share URL and the route
      --stdio                one connection on stdin/stdout (ssh -o ProxyCommand='wsvia tunnel --stdio URL')
      --target HOST:PORT     with --stdio: ask the bridge for this target
      --linger SECONDS       against a bridge without half-close (websockify): keep the WebSocket open this long
                             after local EOF and the last data, for the answer (default ${DEFAULT_LINGER / 1000})

Route, proxy, TLS and trace options are those of wsvia connect: -x/--proxy, --no-proxy, --noproxy,
-U/--proxy-user, --proxy-header, --proxy-ca, --proxy-insecure, -H/--header (e.g. 'Authorization: Bearer T'),
--origin, --ca, -k/--insecure, --cert/--key, --proxy-cert/--proxy-key, --trace, --ping SECONDS,
--timeout SECONDS. Credentials for the bridge's Basic
auth go in the URL (ws://user:pass@host/).

${exitCodesHelp(ALL_EXIT_CODES)}`;

const OWN_VALUE_FLAGS = ['-L', '-R', '--target', '--linger'] as const;

/** -L and -R have no long name (ssh's flags). */
export const SHORT_ONLY_OPTIONS = ['-L', '-R'] as const;

/** The long flags `wsvia tunnel` takes: wsvia connect's but its session flags, and its own (shell completion). */
export const OPTIONS: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
  ...Object.fromEntries(
    Object.entries(CONNECT_OPTIONS).filter(([k]) => !(SESSION_FLAGS as readonly string[]).includes(k)),
  ),
  target: { type: 'string' },
  linger: { type: 'string' },
  stdio: { type: 'boolean' },
};

interface TunnelArgs {
  readonly locals: { listen: { host: string; port: number }; target?: Authority }[];
  readonly remotes: { bind: string; port: number; local: Authority }[];
  readonly stdio: boolean;
  readonly target: Authority | undefined;
  readonly linger: number | undefined;
  readonly url: string;
  readonly options: ConnectOptions;
  readonly trace: boolean;
  readonly pingMs: number | undefined;
}

function authority(text: string, what: string): Authority {
  try {
    return parseAuthority(text, what);
  } catch {
    throw new UsageError(`${what}: expected HOST:PORT (IPv6 in brackets), got ${JSON.stringify(text)}`);
  }
}

/** Splits `[BIND:]PORT:HOST:PORT` (or `[BIND:]PORT`) at the colon that starts the remote part. */
function splitSpec(
  spec: string,
  flag: string,
): { listen: { host: string; port: number }; target?: Authority } {
  const m = /^((?:(?:\[[^\]]+\]|[^:[\]]+):)?\d{1,5})(?::(.+))?$/.exec(spec);
  if (!m) throw new UsageError(`${flag} expects [BIND:]PORT[:HOST:PORT], got ${JSON.stringify(spec)}`);
  const listen = parseListen(m[1] as string, flag);
  return m[2] === undefined ? { listen } : { listen, target: authority(m[2], flag) };
}

export function parseTunnelArgs(argv: string[]): TunnelArgs | { help: true } {
  const rest: string[] = [];
  const own: Record<(typeof OWN_VALUE_FLAGS)[number], string[]> = {
    '-L': [],
    '-R': [],
    '--target': [],
    '--linger': [],
  };
  let stdio = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if ((OWN_VALUE_FLAGS as readonly string[]).includes(name)) {
      const value = name === a ? argv[++i] : a.slice(eq + 1);
      if (value === undefined) throw new UsageError(`${name} expects a value`);
      own[name as (typeof OWN_VALUE_FLAGS)[number]].push(value);
    } else if (a === '--stdio') stdio = true;
    else rest.push(a);
  }
  const c = parseConnectArgs(rest);
  if (c.help) return { help: true };
  if (c.sessionFlags.length > 0)
    throw new UsageError(
      `${c.sessionFlags.map((f) => `--${f}`).join(', ')}: wsvia connect options, not tunnel ones`,
    );
  // -L and -R repeat and mix in one process (ssh's way); --stdio is one connection and stands alone.
  const forwards = own['-L'].length + own['-R'].length;
  if (stdio ? forwards > 0 : forwards === 0)
    throw new UsageError('give -L and/or -R (each repeatable), or --stdio alone');
  if (own['--target'].length > 0 && !stdio)
    throw new UsageError('--target goes with --stdio (with -L: -L PORT:HOST:PORT)');
  const lingerS = own['--linger'][0] === undefined ? undefined : Number(own['--linger'][0]);
  if (lingerS !== undefined && !(lingerS >= 0)) throw new UsageError('--linger expects a number of seconds');
  const remotes = own['-R'].map((spec) => {
    const s = splitSpec(spec, '-R');
    if (!s.target) throw new UsageError(`-R expects [BIND:]PORT:HOST:PORT, got ${JSON.stringify(spec)}`);
    if (s.listen.port === 0) throw new UsageError('-R needs a port the bridge allows, not 0');
    return { bind: s.listen.host, port: s.listen.port, local: s.target };
  });
  const pingMs = c.options.ping?.interval;
  return {
    locals: own['-L'].map((spec) => splitSpec(spec, '-L')),
    remotes,
    stdio,
    target: own['--target'][0] === undefined ? undefined : authority(own['--target'][0], '--target'),
    linger: lingerS === undefined ? undefined : lingerS * 1000,
    url: c.session.url,
    options: c.options,
    trace: c.trace,
    pingMs,
  };
}

/** stdin and stdout as one Duplex whose end is stdout's end and whose EOF is stdin's. */
function stdioStream(): Duplex {
  const d = new Duplex({
    allowHalfOpen: true,
    read() {
      process.stdin.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (process.stdout.write(chunk)) cb();
      else process.stdout.once('drain', () => cb());
    },
    final(cb) {
      cb();
    },
  });
  process.stdin.on('data', (c: Buffer) => {
    if (!d.push(c)) process.stdin.pause();
  });
  process.stdin.once('end', () => d.push(null));
  process.stdin.pause();
  return d;
}

export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseTunnelArgs>;
  try {
    args = parseTunnelArgs(argv);
  } catch (e) {
    return reportUsage(isWsviaError(e) ? new UsageError(e.message) : e, 'tunnel');
  }
  if ('help' in args) {
    process.stdout.write(usage);
    return EXIT_CODES.ok;
  }
  const trace = (line: string): void => void process.stderr.write(`${line}\n`);
  const connectOptions: ConnectOptions = args.trace
    ? { ...args.options, trace: (e) => trace(formatTraceEvent(e)) }
    : args.options;
  const base: TunnelOptions = {
    url: args.url,
    connect: connectOptions,
    ...(args.linger === undefined ? {} : { linger: args.linger }),
    ...(args.trace ? { onNote: (t: string) => trace(`* ${t}`) } : {}),
  };
  const onSession = args.trace
    ? (r: PumpResult): void =>
        trace(
          `* session ended: ${r.bytesFromSocket} bytes sent, ${r.bytesFromWebSocket} received, first closed by ${r.closedBy === 'socket' ? 'this side' : r.closedBy === 'websocket' ? 'the bridge' : r.closedBy} (WebSocket close ${r.wsCloseCode})`,
        )
    : undefined;
  const printError = (e: unknown): void => {
    process.stderr.write(
      isWsviaError(e) ? formatError(e) : `wsvia: ${e instanceof Error ? e.message : String(e)}\n`,
    );
  };

  if (args.stdio) {
    try {
      const r = await carry(stdioStream(), { ...base, ...(args.target ? { target: args.target } : {}) });
      onSession?.(r);
      process.stdin.destroy();
      // A reset on any hop is never a success: the bytes may be incomplete (issue 12 §1).
      if (!r.reset) return EXIT_CODES.ok;
      process.stderr.write(
        `wsvia: the tunnelled connection was reset (WebSocket close ${r.wsCloseCode}): the data may be incomplete\n`,
      );
      return exitCodeFor('WEBSOCKET_CLOSED');
    } catch (e) {
      process.stdin.destroy();
      return reportError(e);
    }
  }

  const closers: (() => Promise<void>)[] = [];
  try {
    for (const l of args.locals) {
      const t = await startLocalTunnel(l.listen, {
        ...base,
        ...(l.target ? { target: l.target } : {}),
        onError: printError,
        ...(onSession ? { onSession } : {}),
      });
      closers.push(() => t.close());
      process.stdout.write(
        `wsvia tunnel listening on ${l.listen.host.includes(':') ? `[${l.listen.host}]` : l.listen.host}:${t.port} -> ${args.url}${l.target ? ` -> ${l.target.host}:${l.target.port}` : ''}\n`,
      );
    }
  } catch (e) {
    for (const c of closers) await c();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      // A port in use is 1 in every command, as for the servers (LISTEN_FAILED).
      process.stderr.write(`wsvia: cannot listen for -L (${code}): choose another port\n`);
      return EXIT_CODES.failure;
    }
    return reportError(e);
  }
  const reverse = args.remotes.map((r) => {
    const t = startReverseTunnel({ bind: r.bind, port: r.port }, r.local, {
      ...base,
      ...(args.pingMs === undefined ? {} : { ping: args.pingMs }),
      onListening: (bind, port, attempt) =>
        process.stdout.write(
          `wsvia tunnel: bridge listens on ${bind}:${port} -> ${r.local.host}:${r.local.port}${attempt > 0 ? ` (after ${attempt} retries)` : ''}\n`,
        ),
      onRetry: (err, delay) =>
        process.stderr.write(`wsvia: ${err.summary} [${err.code}]; reconnecting in ${delay} ms\n`),
      onError: printError,
      ...(onSession ? { onSession } : {}),
    });
    closers.push(() => t.close());
    return t;
  });
  const stop = new Promise<number>((resolve) => {
    process.once('SIGINT', () => resolve(EXIT_CODES.ok));
    process.once('SIGTERM', () => resolve(EXIT_CODES.ok));
    for (const t of reverse) t.finished.catch((e: unknown) => resolve(reportError(e)));
  });
  const code = await stop;
  for (const c of closers) await c();
  return code;
}
