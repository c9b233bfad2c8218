/** `wsvia bridge`: WebSocket -> TCP, websockify-compatible, in one process. */
import { tuneHeapForLongLivedSockets } from './heap-tuning.js';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Htpasswd } from '../auth/htpasswd.js';
import { StaticUsers, type UserStore } from '../auth/server-auth.js';
import { parseTargetRule, type TargetRule } from '../bridge/allow-target.js';
import { sessionToPcapng } from '../bridge/pcapng.js';
import { formatRecording, parseRecording } from '../bridge/replay.js';
import { BridgeServer, type BridgeOptions } from '../bridge/server.js';
import type { FlagValues } from '../config.js';
import { EXIT_CODES, isWsviaError } from '../errors.js';
import type { AccessLog } from '../observe/access-log.js';
import { AdminListener } from '../serve/admin.js';
import { DEFAULT_ADMISSION } from '../serve/admission.js';
import { parseAuthority, type Authority } from '../protocol/authority.js';
import { parsePortList } from '../route/destination.js';
import { mergeConfigFile, parseMerged } from './config-file.js';
import { parseListen } from './listen-address.js';
import { parsedAs, positiveNumber, readFlagFile, readTlsFiles } from './flag-values.js';
import { exitCodesHelp, reportError, reportUsage, SERVER_EXIT_CODES, UsageError } from './output.js';
import { openAccessLog, waitForSignal } from './server-lifecycle.js';

export const usage = `usage: wsvia bridge --listen [HOST:]PORT (--target HOST:PORT | --route PATH=HOST:PORT | --token-file FILE
                    | --allow-target PATTERN | --allow-reverse PORTS)... [options]
       wsvia bridge --replay FILE [--pcap OUT.pcapng]

WebSocket -> TCP, compatible with websockify's clients (noVNC and others): each WebSocket becomes one TCP
connection. Accepts the "binary" subprotocol, none, and wsvia.tunnel.v1 (wsvia tunnel: half-close carried).

targets (refused before any TCP connection, with an HTTP status and a reason):
      --listen [HOST:]PORT   where to listen (default 127.0.0.1:6080; port 0: the system chooses)
      --target HOST:PORT     the target for every path not routed otherwise
      --route PATH=HOST:PORT the target for one URL path (repeatable)
      --token-file FILE      websockify TokenFile ("token: host:port" lines); clients pass ?token=; re-read on change
      --allow-target PATTERN targets a client may choose (?target=host:port, wsvia tunnel -L P:HOST:PORT):
                             HOST[:PORTS], HOST a name, *.suffix, address or CIDR (repeatable). Loopback,
                             private, link-local and metadata addresses stay denied unless a rule names them by
                             address, or --allow-private is given
      --allow-private        let name rules reach loopback/private/link-local addresses
      --allow-reverse PORTS  ports reverse tunnels (wsvia tunnel -R) may listen on, e.g. 2222,8000-8100

browsers and security:
      --web DIR              serve static files from DIR on the same port
      --allow-origin ORIGIN  browser origins allowed to connect (repeatable; * for any). Default: any, or only
                             the bridge's own pages when --web is given
      --tls-cert FILE        serve wss:// and https:// with this certificate (PEM) ...
      --tls-key FILE         ... and this key
      --auth USER:PASS       require Basic credentials (repeatable)
      --htpasswd FILE        ... or users from an htpasswd file (bcrypt, apr1, SHA)
      --bearer-token-file F  accept "Authorization: Bearer T" for each token T in F (one per line)

operations:
      --ping SECONDS         ping every WebSocket; a peer that misses a pong is dropped (dead-peer reaping)
      --max-connections N    at most N sessions at once (default ${DEFAULT_ADMISSION.maxConnections}; then 503)
      --max-per-client N     at most N sessions per client address (default ${DEFAULT_ADMISSION.maxPerClient}; then 429)
      --connect-timeout S    limit for the TCP connect to a target (default 10)
      --access-log FILE      one JSON line per session (target, bytes each way, duration, who closed); - is stdout
      --admin [HOST:]PORT    Prometheus /metrics and /healthz there
      --drain-timeout S      on SIGINT/SIGTERM, sessions get close 1001 and this long to end (default 1)
      --record DIR           each session's bytes with timestamps, one JSON-lines file per session
      --replay FILE          print a recorded session (time, direction, bytes) and exit ...
      --pcap OUT             ... or write it as pcapng for Wireshark/tshark (a synthetic TCP connection)
      --config FILE          a YAML file whose keys are these flags' names (target: db:5432,
                             allow-origin: [https://a.example]); flags given win
  -h, --help

Prints "wsvia bridge listening on ws://HOST:PORT" when ready; stops on SIGINT or SIGTERM.
${exitCodesHelp(SERVER_EXIT_CODES)}`;

function authority(text: string, flag: string): Authority {
  try {
    return parseAuthority(text, flag);
  } catch {
    throw new UsageError(`${flag} expects HOST:PORT (IPv6 in brackets), got ${JSON.stringify(text)}`);
  }
}

/** The flags of `wsvia bridge` (util.parseArgs' table; shell completion reads it too). */
export const OPTIONS = {
  listen: { type: 'string' },
  target: { type: 'string' },
  route: { type: 'string', multiple: true },
  'token-file': { type: 'string' },
  'allow-target': { type: 'string', multiple: true },
  'allow-private': { type: 'boolean' },
  'allow-reverse': { type: 'string' },
  web: { type: 'string' },
  'allow-origin': { type: 'string', multiple: true },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  auth: { type: 'string', multiple: true },
  htpasswd: { type: 'string' },
  'bearer-token-file': { type: 'string' },
  ping: { type: 'string' },
  'max-connections': { type: 'string' },
  'max-per-client': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'access-log': { type: 'string' },
  admin: { type: 'string' },
  'drain-timeout': { type: 'string' },
  record: { type: 'string' },
  replay: { type: 'string' },
  pcap: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type BridgeFlags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

export function parseBridgeArgs(argv: string[]) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  if (values.help) return { help: true as const };
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  // A config file's values have the shapes util.parseArgs gives each flag (config.ts reads them by this table).
  return parseMerged(mergeConfigFile(values, OPTIONS), (v: FlagValues) => bridgeArgs(v as BridgeFlags));
}

function bridgeArgs(values: BridgeFlags) {
  if (values.pcap !== undefined && values.replay === undefined)
    throw new UsageError('--pcap goes with --replay FILE');
  if (values.replay !== undefined) return { help: false as const, replay: values.replay, pcap: values.pcap };
  const listen = parseListen(values.listen ?? '127.0.0.1:6080', '--listen');
  const routes = new Map<string, Authority>();
  for (const r of values.route ?? []) {
    const eq = r.indexOf('=');
    if (eq <= 0 || !r.startsWith('/'))
      throw new UsageError(`--route expects /PATH=HOST:PORT, got ${JSON.stringify(r)}`);
    routes.set(r.slice(0, eq), authority(r.slice(eq + 1), '--route'));
  }
  const allowTargets: TargetRule[] = parsedAs('--allow-target', () =>
    (values['allow-target'] ?? []).map(parseTargetRule),
  );
  const reverse = values['allow-reverse'];
  const allowReverse =
    reverse === undefined ? undefined : parsedAs('--allow-reverse', () => parsePortList(reverse));
  if (
    values.target === undefined &&
    routes.size === 0 &&
    values['token-file'] === undefined &&
    allowTargets.length === 0 &&
    allowReverse === undefined
  )
    throw new UsageError(
      'nothing to bridge to: give --target, --route, --token-file, --allow-target or --allow-reverse',
    );
  const tls = readTlsFiles(values['tls-cert'], values['tls-key']);
  const stores: UserStore[] = [];
  if (values.auth) stores.push(new StaticUsers(values.auth));
  if (values.htpasswd !== undefined) {
    const text = readFlagFile(values.htpasswd, '--htpasswd').toString('utf8');
    try {
      stores.push(Htpasswd.parse(text, values.htpasswd));
    } catch (e) {
      throw new UsageError(isWsviaError(e) ? e.message : String(e));
    }
  }
  const users: UserStore | undefined =
    stores.length === 0
      ? undefined
      : { verify: async (u, p) => (await Promise.all(stores.map((s) => s.verify(u, p)))).some(Boolean) };
  const bearerTokens =
    values['bearer-token-file'] === undefined
      ? undefined
      : readFlagFile(values['bearer-token-file'], '--bearer-token-file')
          .toString('utf8')
          .split(/\r?\n/)
          .map((l) => l.trim())
          .filter((l) => l !== '' && !l.startsWith('#'));
  const ping = positiveNumber(values.ping, '--ping');
  const maxConnections = positiveNumber(values['max-connections'], '--max-connections');
  const maxPerClient = positiveNumber(values['max-per-client'], '--max-per-client');
  const connectTimeout = positiveNumber(values['connect-timeout'], '--connect-timeout');
  const drainTimeout = positiveNumber(values['drain-timeout'], '--drain-timeout');
  if (values.record !== undefined && !fs.statSync(values.record, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`--record expects an existing directory, got ${values.record}`);
  if (values.web !== undefined && !fs.statSync(values.web, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`--web expects an existing directory, got ${values.web}`);
  const options: BridgeOptions = {
    host: listen.host,
    port: listen.port,
    ...(values.target === undefined ? {} : { target: authority(values.target, '--target') }),
    ...(routes.size > 0 ? { routes } : {}),
    ...(values['token-file'] === undefined ? {} : { tokenFile: values['token-file'] }),
    ...(allowTargets.length > 0 ? { allowTargets } : {}),
    ...(values['allow-private'] ? { allowPrivate: true } : {}),
    ...(allowReverse === undefined ? {} : { allowReverse }),
    ...(values.web === undefined ? {} : { web: values.web }),
    ...(values['allow-origin'] === undefined ? {} : { allowOrigins: values['allow-origin'] }),
    ...(tls ? { tls } : {}),
    ...(users ? { users } : {}),
    ...(bearerTokens ? { bearerTokens } : {}),
    ...(ping === undefined ? {} : { ping: ping * 1000 }),
    ...(maxConnections === undefined ? {} : { maxConnections }),
    ...(maxPerClient === undefined ? {} : { maxPerClient }),
    ...(connectTimeout === undefined ? {} : { connectTimeout: connectTimeout * 1000 }),
    ...(drainTimeout === undefined ? {} : { drainTimeout: drainTimeout * 1000 }),
    ...(values.record === undefined ? {} : { record: values.record }),
  };
  return {
    help: false as const,
    options,
    accessLog: values['access-log'],
    admin: values.admin === undefined ? undefined : parseListen(values.admin, '--admin'),
  };
}

export async function run(argv: string[]): Promise<number> {
  tuneHeapForLongLivedSockets();
  let args: ReturnType<typeof parseBridgeArgs>;
  try {
    args = parseBridgeArgs(argv);
  } catch (e) {
    return reportUsage(e, 'bridge');
  }
  if (args.help) {
    process.stdout.write(usage);
    return EXIT_CODES.ok;
  }
  if ('replay' in args) {
    try {
      const text = fs.readFileSync(args.replay, 'utf8');
      if (args.pcap === undefined) process.stdout.write(formatRecording(text));
      else fs.writeFileSync(args.pcap, sessionToPcapng(parseRecording(text)));
      return EXIT_CODES.ok;
    } catch (e) {
      return reportError(e);
    }
  }
  let bridge: BridgeServer;
  let admin: AdminListener | undefined;
  let accessLog: AccessLog;
  try {
    accessLog = openAccessLog(args.accessLog, 'bridge');
    bridge = new BridgeServer({ ...args.options, accessLog });
    const b = bridge;
    admin = args.admin
      ? new AdminListener({ registry: b.metrics.registry, healthy: () => !b.draining })
      : undefined;
    await admin?.listen(args.admin?.host ?? '127.0.0.1', args.admin?.port ?? 0);
    await bridge.listen();
  } catch (e) {
    await admin?.close();
    return reportError(e);
  }
  process.stderr.write(`wsvia bridge listening on ${bridge.url}\n`);
  if (admin) process.stderr.write(`wsvia bridge: metrics on ${admin.url}/metrics\n`);
  await waitForSignal();
  await bridge.close();
  await admin?.close();
  await accessLog.close();
  return EXIT_CODES.ok;
}
