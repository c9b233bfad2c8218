/** `wsvia proxy`: the forward proxy. Flags and the config file, printing, signals and workers; no proxy logic. */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { Htpasswd } from '../auth/htpasswd.js';
import { StaticUsers, type UserStore } from '../auth/server-auth.js';
import type { FlagValues } from '../config.js';
import { EXIT_CODES } from '../errors.js';
import { unbracket } from '../protocol/authority.js';
import { parseHostRule, parsePortList, type DestinationPolicy } from '../route/destination.js';
import { parseProxyUrl } from '../route/proxy-url.js';
import { AdminListener } from '../serve/admin.js';
import { answerAdminRequests, ClusterAdmin } from '../serve/cluster-admin.js';
import { RELAY_CHOICES, relayDecision, type RelayChoice } from '../serve/splice-relay.js';
import { DEFAULT_LIMITS, SPLICE_AFTER, type ProxyLimits, type ProxyServerOptions } from '../proxy/options.js';
import { ProxyServer } from '../proxy/server.js';
import { tuneHeapForLongLivedSockets } from './heap-tuning.js';
import { mergeConfigFile, parseMerged } from './config-file.js';
import { parsedAs, readFlagFile, readTlsFiles } from './flag-values.js';
import { parseListen, parsePort, type ListenAddress } from './listen-address.js';
import { exitCodesHelp, reportUsage, SERVER_EXIT_CODES, UsageError } from './output.js';
import { runPrimary, tellPrimaryListening } from './cluster-primary.js';
import { failStart, openAccessLog, waitForSignal } from './server-lifecycle.js';

export const usage = `usage: wsvia proxy [options]

A forward proxy for CONNECT tunnels (wss://, https://) and absolute-form http:// and ws:// requests, safe to
expose: destinations on loopback and private networks are denied unless allowed, limits are on by default.

listener:
  --listen [HOST:]PORT          where to listen (default 127.0.0.1:8080; 0.0.0.0 exposes it; [::1]:PORT for
                                IPv6; port 0 lets the system choose)
  --host HOST, --port PORT      the same, in two flags
  --tls-cert FILE --tls-key FILE  serve TLS: clients use an https:// proxy URL
  --proxy-protocol              expect a PROXY protocol v1/v2 header (behind HAProxy or a cloud LB)
  --workers N                   N processes sharing the port (default 1)
  --relay js|splice|auto        the tunnel relay (default auto): splice is the zero-copy native relay (Linux, plain
                                TCP listener); auto uses it where it loads, else JavaScript; the start says which

authentication (none by default):
  --auth USER:PASS              a user (repeatable); Digest and Basic are offered
  --htpasswd FILE               users from an htpasswd file (bcrypt, apr1, SHA-1); Basic
  --auth-failures-per-minute N  failed logins per client address in a minute (default ${DEFAULT_LIMITS.authFailuresPerMinute};
                                then 429 + Retry-After; 0: no limit)

destinations:
  --allow-ports LIST            ports CONNECT and requests may reach (default 443,80; ranges: 8000-9000; *)
  --allow-private               allow loopback, private, link-local and unique-local addresses
  --allow RULE                  allow a host, *.domain, address or CIDR even if private (repeatable)
  --deny RULE                   deny a host, *.domain, address or CIDR (repeatable; wins over everything)
  --upstream URL                chain every tunnel through this http:// or https:// parent proxy (user:pass@ ok)
  --upstream-ca FILE            trust this CA for an https:// parent

limits:
  --max-tunnels N               tunnels at once (default ${DEFAULT_LIMITS.maxTunnels}; then 503 + Retry-After)
  --max-tunnels-per-client N    per client address (default ${DEFAULT_LIMITS.maxTunnelsPerClient}; then 429)
  --max-header-bytes N          request head size (default ${DEFAULT_LIMITS.head.maxHeadBytes}; then 431)
  --header-timeout SECONDS      the request head must arrive within (default ${DEFAULT_LIMITS.headerTimeout / 1000}; then 408)
  --connect-timeout SECONDS     DNS and connect to the destination (default ${DEFAULT_LIMITS.connectTimeout / 1000}; then 504)
  --idle-timeout SECONDS        close a tunnel silent for this long (default ${DEFAULT_LIMITS.idleTimeout / 1000}; 0: never)
  --max-lifetime SECONDS        close a tunnel this long after it opened (default: no limit)

operations:
  --access-log FILE|-           one JSON line per tunnel or request (- is stdout)
  --admin HOST:PORT             /metrics (Prometheus) and /healthz
  --drain-timeout SECONDS       on SIGTERM, let tunnels finish this long (default 30)
  --config FILE                 a YAML file whose keys are these flags' names (max-tunnels: 100,
                                allow-ports: [443, 8443]); flags given win
  -h, --help

Prints "wsvia proxy listening on URL" when ready.
${exitCodesHelp(SERVER_EXIT_CODES)}`;

const STRING_OPTIONS = [
  'listen',
  'host',
  'port',
  'htpasswd',
  'auth-failures-per-minute',
  'allow-ports',
  'max-tunnels',
  'max-tunnels-per-client',
  'max-header-bytes',
  'header-timeout',
  'connect-timeout',
  'idle-timeout',
  'max-lifetime',
  'access-log',
  'admin',
  'drain-timeout',
  'tls-cert',
  'tls-key',
  'upstream',
  'upstream-ca',
  'config',
  'workers',
  'relay',
] as const;
const LIST_OPTIONS = ['auth', 'allow', 'deny'] as const;
const BOOLEAN_OPTIONS = ['allow-private', 'proxy-protocol'] as const;

type StringKey = (typeof STRING_OPTIONS)[number];
type ListKey = (typeof LIST_OPTIONS)[number];
type BooleanKey = (typeof BOOLEAN_OPTIONS)[number];

/** Every setting, as text (flags and YAML alike), before validation. */
interface Settings {
  strings: Partial<Record<StringKey, string>>;
  lists: Partial<Record<ListKey, string[]>>;
  booleans: Partial<Record<BooleanKey, boolean>>;
}

interface Built {
  readonly server: ProxyServerOptions;
  readonly accessLog: string | undefined;
  readonly admin: { host: string; port: number } | undefined;
  readonly drainTimeout: number;
  readonly workers: number;
}

function seconds(s: Settings, key: StringKey, name: (k: string) => string, fallbackMs: number): number {
  const t = s.strings[key];
  if (t === undefined) return fallbackMs;
  const n = Number(t);
  if (t.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new UsageError(`${name(key)} expects seconds (0 or more), got ${JSON.stringify(t)}`);
  return Math.round(n * 1000);
}

function count(s: Settings, key: StringKey, name: (k: string) => string, fallback: number, min = 1): number {
  const t = s.strings[key];
  if (t === undefined) return fallback;
  if (!/^\d+$/.test(t) || Number(t) < min)
    throw new UsageError(`${name(key)} expects a whole number of at least ${min}, got ${JSON.stringify(t)}`);
  return Number(t);
}

/** `--listen [HOST:]PORT`, or its aliases `--host` and `--port`. */
function listenOf(s: Settings, name: (k: string) => string): ListenAddress {
  const str = s.strings;
  if (str.listen !== undefined) {
    if (str.host !== undefined || str.port !== undefined)
      throw new UsageError(
        `${name('listen')} says what ${name('host')} and ${name('port')} say: give one or the other`,
      );
    return parseListen(str.listen, name('listen'));
  }
  return {
    host: unbracket(str.host ?? '127.0.0.1'),
    port: str.port === undefined ? 8080 : parsePort(str.port, name('port')),
  };
}

/** `--relay`: `splice` is refused where it cannot run, rather than quietly relaying in JavaScript. */
function relayChoice(s: Settings, name: (k: string) => string, tlsListener: boolean): RelayChoice {
  const v = s.strings.relay ?? 'auto';
  if (!(RELAY_CHOICES as readonly string[]).includes(v))
    throw new UsageError(`${name('relay')} expects js, splice or auto, got ${JSON.stringify(v)}`);
  const choice = v as RelayChoice;
  const d = relayDecision(choice, tlsListener);
  if (choice === 'splice' && d.relay !== 'splice')
    throw new UsageError(`${name('relay')} splice cannot run here: ${d.why} (use auto or js)`);
  return choice;
}

/** Validates settings into server options. `name` renders a key for messages (`--port` or `port`). */
export function toOptions(s: Settings, name: (k: string) => string): Built {
  const str = s.strings;
  const listen = listenOf(s, name);
  const policy: DestinationPolicy = {
    ports: parsedAs(name('allow-ports'), () => parsePortList(str['allow-ports'] ?? '443,80')),
    allowPrivate: s.booleans['allow-private'] ?? false,
    allow: parsedAs(name('allow'), () => (s.lists.allow ?? []).map(parseHostRule)),
    deny: parsedAs(name('deny'), () => (s.lists.deny ?? []).map(parseHostRule)),
  };
  const limits: ProxyLimits = {
    maxTunnels: count(s, 'max-tunnels', name, DEFAULT_LIMITS.maxTunnels),
    maxTunnelsPerClient: count(s, 'max-tunnels-per-client', name, DEFAULT_LIMITS.maxTunnelsPerClient),
    headerTimeout: seconds(s, 'header-timeout', name, DEFAULT_LIMITS.headerTimeout),
    connectTimeout: seconds(s, 'connect-timeout', name, DEFAULT_LIMITS.connectTimeout),
    idleTimeout: seconds(s, 'idle-timeout', name, DEFAULT_LIMITS.idleTimeout),
    maxLifetime: seconds(s, 'max-lifetime', name, 0),
    authFailuresPerMinute: count(
      s,
      'auth-failures-per-minute',
      name,
      DEFAULT_LIMITS.authFailuresPerMinute,
      0,
    ),
    head: {
      maxHeadBytes: count(s, 'max-header-bytes', name, DEFAULT_LIMITS.head.maxHeadBytes, 256),
      maxHeaders: DEFAULT_LIMITS.head.maxHeaders,
    },
  };
  let users: UserStore | undefined;
  const auth = s.lists.auth ?? [];
  for (const a of auth)
    if (a.indexOf(':') <= 0)
      throw new UsageError(`${name('auth')} expects USER:PASS, got a value without a colon`);
  if (auth.length > 0 && str.htpasswd !== undefined)
    throw new UsageError(`${name('auth')} and ${name('htpasswd')} do not go together: choose one user store`);
  if (auth.length > 0) users = new StaticUsers(auth);
  if (str.htpasswd !== undefined)
    users = Htpasswd.parse(readFlagFile(str.htpasswd, name('htpasswd')).toString('utf8'), str.htpasswd);
  const tls = readTlsFiles(str['tls-cert'], str['tls-key'], name('tls-cert'), name('tls-key'));
  const upstream =
    str.upstream === undefined
      ? undefined
      : parsedAs(name('upstream'), () => parseProxyUrl(str.upstream as string));
  if (upstream && upstream.scheme !== 'http' && upstream.scheme !== 'https')
    throw new UsageError(`${name('upstream')} must be an http:// or https:// proxy, got ${upstream.display}`);
  const upstreamCa =
    str['upstream-ca'] === undefined ? undefined : readFlagFile(str['upstream-ca'], name('upstream-ca'));
  const server: ProxyServerOptions = {
    host: listen.host,
    port: listen.port,
    policy,
    limits,
    ...(users ? { users } : {}),
    ...(tls ? { tls } : {}),
    ...(upstream ? { upstream } : {}),
    ...(upstreamCa ? { upstreamCa } : {}),
    proxyProtocol: s.booleans['proxy-protocol'] ?? false,
    relay: relayChoice(s, name, tls !== undefined),
  };
  return {
    server,
    accessLog: str['access-log'],
    admin: str.admin === undefined ? undefined : parseListen(str.admin, name('admin')),
    drainTimeout: seconds(s, 'drain-timeout', name, 30_000),
    workers: count(s, 'workers', name, 1),
  };
}

/** The flags of `wsvia proxy`, one per setting (util.parseArgs' table; shell completion reads it too). */
export const OPTIONS: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
  ...Object.fromEntries(STRING_OPTIONS.map((k) => [k, { type: 'string' }])),
  ...Object.fromEntries(LIST_OPTIONS.map((k) => [k, { type: 'string', multiple: true }])),
  ...Object.fromEntries(BOOLEAN_OPTIONS.map((k) => [k, { type: 'boolean' }])),
  help: { type: 'boolean', short: 'h' },
};

/** Flag values (the command line's, or a config file's under them) sorted by kind. */
function settingsOf(v: FlagValues): Settings {
  const s: Settings = { strings: {}, lists: {}, booleans: {} };
  for (const k of STRING_OPTIONS) if (typeof v[k] === 'string') s.strings[k] = v[k];
  for (const k of LIST_OPTIONS) if (Array.isArray(v[k])) s.lists[k] = v[k];
  for (const k of BOOLEAN_OPTIONS) if (typeof v[k] === 'boolean') s.booleans[k] = v[k];
  return s;
}

export async function run(argv: string[]): Promise<number> {
  // docs/proxy.md: about 11.7 -> 10 KiB per idle tunnel measured here.
  tuneHeapForLongLivedSockets();
  let built: Built;
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    if (values.help) {
      process.stdout.write(usage);
      return EXIT_CODES.ok;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const merged = mergeConfigFile(values, OPTIONS, [[['listen'], ['host', 'port']]]);
    built = parseMerged(merged, (v) => toOptions(settingsOf(v), (k) => `--${k}`));
  } catch (e) {
    return reportUsage(e, 'proxy');
  }
  if (built.workers > 1 && cluster.isPrimary)
    return runProxyPrimary(built.workers, built.drainTimeout, built.admin);
  return runServer(built, cluster.isWorker);
}

async function runServer(built: Built, isWorker: boolean): Promise<number> {
  let server: ProxyServer;
  let admin: AdminListener | undefined;
  let url: string;
  try {
    const accessLog = openAccessLog(built.accessLog, 'proxy');
    const s = (server = new ProxyServer({ ...built.server, accessLog }));
    const pages = { registry: s.metrics.registry, healthy: () => !s.draining };
    // Under --workers the primary serves the admin listener for all workers (serve/cluster-admin.ts).
    if (isWorker) answerAdminRequests(pages);
    else if (built.admin) {
      admin = new AdminListener(pages);
      await admin.listen(built.admin.host, built.admin.port);
    }
    url = (await server.listen()).url;
  } catch (e) {
    await admin?.close();
    return failStart(e);
  }
  if (isWorker) tellPrimaryListening(url);
  else {
    if (admin) process.stderr.write(`wsvia proxy admin on ${admin.url} (/metrics, /healthz)\n`);
    const relay = relayDecision(built.server.relay ?? 'js', built.server.tls !== undefined);
    const after =
      relay.relay !== 'splice'
        ? ''
        : server.dialsNatively
          ? ', destinations dialed natively, spliced from the first byte'
          : `, a tunnel moves to it after ${SPLICE_AFTER / 1024} KiB`;
    process.stderr.write(`wsvia proxy relay: ${relay.relay} (${relay.why}${after})\n`);
    process.stderr.write(`wsvia proxy listening on ${url}\n`);
  }
  const signal = await waitForSignal();
  if (!isWorker)
    process.stderr.write(
      `wsvia proxy: ${signal}, draining ${server.active} tunnels (up to ${built.drainTimeout / 1000} s)\n`,
    );
  await server.close(built.drainTimeout);
  await admin?.close();
  // A worker's IPC channel to the primary would keep it alive until the primary's kill.
  cluster.worker?.disconnect();
  return EXIT_CODES.ok;
}

/** The primary of --workers N: the admin listener for all workers (serve/cluster-admin.ts), then cli/cluster-primary.ts. */
async function runProxyPrimary(
  workers: number,
  drainTimeout: number,
  adminAt: { host: string; port: number } | undefined,
): Promise<number> {
  let admin: ClusterAdmin | undefined;
  try {
    if (adminAt) {
      admin = new ClusterAdmin();
      await admin.listen(adminAt.host, adminAt.port);
    }
  } catch (e) {
    return failStart(e);
  }
  // Workers serve long-lived sockets: a small young generation keeps idle tunnels cheap (about 9 KiB each
  // instead of 13 measured here), at no throughput cost seen on this machine. An explicit flag given wins.
  const execArgv = process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))
    ? process.execArgv
    : ['--max-semi-space-size=1', ...process.execArgv];
  return runPrimary({
    command: 'proxy',
    workers,
    admin,
    settings: { execArgv },
    forwardSighup: false,
    killAfterMs: drainTimeout + 5000,
    announce: ([url]) => {
      if (admin) process.stderr.write(`wsvia proxy admin on ${admin.url} (/metrics, /healthz)\n`);
      process.stderr.write(`wsvia proxy listening on ${String(url)} (${workers} workers)\n`);
    },
  });
}
