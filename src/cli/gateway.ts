/** `wsvia gateway`: the WebSocket reverse proxy. Argument parsing, signals and printing only. */
import { tuneHeapForLongLivedSockets } from './heap-tuning.js';
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config.js';
import { EXIT_CODES, isWsviaError } from '../errors.js';
import {
  applyFlagValues,
  configFromNode,
  DEFAULT_LIMITS,
  DEFAULT_WARM,
  EMPTY_CONFIG,
  GATEWAY_FLAGS,
  parseHostPort,
  parseRouteFlag,
  parseSniFlag,
  validateConfig,
  type GatewayConfig,
  type GatewayRelayChoice,
} from '../gateway/config.js';
import { Gateway, type GatewayAddresses } from '../gateway/gateway.js';
import { gatewayRelayDecision } from '../gateway/native-ws-relay.js';
import { answerAdminRequests, ClusterAdmin } from '../serve/cluster-admin.js';
import { relayDecision, type RelayChoice } from '../serve/splice-relay.js';
import { configSignature, ConfigWatch } from './config-watch.js';
import { readTlsFiles } from './flag-values.js';
import { exitCodesHelp, formatError, reportUsage, SERVER_EXIT_CODES, UsageError } from './output.js';
import { runPrimary, tellPrimaryListening } from './cluster-primary.js';
import { failStart, openAccessLog, waitForSignal } from './server-lifecycle.js';

export const usage = `usage: wsvia gateway --listen [HOST:]PORT --route [HOST]/PATH=UPSTREAM[,UPSTREAM...] [options]
       wsvia gateway --config FILE [--watch] [options]

A WebSocket reverse proxy that never drops a healthy connection: idle WebSockets are never cut, reloads leave
open WebSockets on their upstream, SIGTERM drains with close 1001.

Routes
  --listen [HOST:]PORT      plain HTTP/WebSocket listener (HOST default 127.0.0.1; [::1]:PORT for IPv6;
                            port 0: any free port)
  --route [HOST]/PATH=UP[,UP...]
                            HOST: exact or *.suffix (any host if left out); the most specific host,
                            then the longest path prefix wins; UP is ws://, wss://, http:// or https://
                            host[:port][/path] (a path replaces the matched prefix); a list is a
                            round-robin pool with failover (repeatable)
  --config FILE             YAML config whose top-level keys are these flags' names, plus routes: and
                            sni: (docs/gateway.md); flags given too override its values
  --watch                   reload when the config file changes (SIGHUP always reloads)
  --allow-origin ORIGIN     only these Origins may open WebSockets (repeatable; others get 403)
  --trust-proxy CIDR        keep X-Forwarded-*/Forwarded from these peers (repeatable)
  --proxy-protocol          expect a PROXY protocol v1/v2 header on every connection
  --upstream-ca FILE        trust this CA for wss:// and https:// upstreams
Route keys in a config file (kebab-case like the flags; durations in seconds)
  host, path                as in --route
  upstream                  a URL, { url, weight }, or a list of them (weight 1-1000, default 1)
  balance                   round-robin (default, smooth weighted) | least-connections | hash
  hash-key                  client-ip (default) | header:NAME | cookie:NAME | query:NAME (consistent hashing)
  idle-timeout, max-lifetime, ping, ping-timeout, allow-origin
                            the route's own values of the flags of the same names
  set-headers               { NAME: VALUE }: request headers sent to the upstream
  remove-headers            [NAME, ...]: request headers not sent to the upstream
  warm                      the route's own --warm
TLS
  --tls-listen [HOST:]PORT  TLS listener: ALPN h2 (requests and RFC 8441 WebSockets) and http/1.1
  --tls-cert FILE --tls-key FILE   its certificate (re-read on SIGHUP)
  --sni NAME=HOST:PORT      pass TLS for NAME (or *.example.com) to HOST:PORT undecrypted (repeatable)
Keepalive (seconds; fractions allowed)
  --ping S                  ping clients and upstreams every S; a missed pong closes and counts it dead
  --ping-timeout S          how long to wait for the pong (default: the ping interval)
  --idle-timeout S          close WebSockets idle for S (default: never)
  --max-lifetime S          close WebSockets after S (default: never)
  --drain-timeout S         on SIGTERM, wait up to S for WebSockets to close (default 10)
  --drain-spread S          spread the 1001 closes over S (default 5, at most half the drain timeout)
Limits
  --max-connections N       open client connections (503 above; default ${DEFAULT_LIMITS.maxConnections}; 0: no limit)
  --max-per-client N        open connections per client address (429 above; default ${DEFAULT_LIMITS.maxPerClient}; 0: no limit)
  --rate-per-client N       new connections a second per client address, a burst of N (429 above; default 0:
                            no limit)
  --max-header-bytes N      request head size (431 above; default 16384)
  --handshake-timeout S     complete request head within S (408 otherwise; default 10)
  --connect-timeout S       connect to an upstream within S (504 when every member times out; default 5)
  --health-interval S       re-check dead upstreams every S (default 2)
  --warm N                  per ws:// and http:// upstream, N connections dialed ahead of WebSocket upgrades,
                            each used once (default ${DEFAULT_WARM}; 0: dial on demand)
Operations
  --admin [HOST:]PORT       /metrics (Prometheus), /healthz, /routes
  --access-log FILE|-       JSON line per request and WebSocket at its end (- for stdout)
  --workers N               N processes sharing the port(s) (default 1)
  --relay js|native|auto    the WebSocket relay (default auto): native scans frame headers in the native addon
                            and splices payloads, handing every event (close, ping, pong, errors) to JavaScript
                            (Linux; plain TCP client and upstream, routes without ping); auto uses it where it
                            loads, else JavaScript; the start says which. The same choice for SNI
                            passthrough: native splices it, js relays it in JavaScript
  -h, --help

Prints "wsvia gateway listening on http://HOST:PORT" when ready, after every listener (the admin one too) is
bound.
${exitCodesHelp(SERVER_EXIT_CODES)}`;

/** The flags of `wsvia gateway` (util.parseArgs' table; shell completion reads it too). */
export const OPTIONS = {
  ...GATEWAY_FLAGS,
  route: { type: 'string', multiple: true },
  sni: { type: 'string', multiple: true },
  config: { type: 'string' },
  watch: { type: 'boolean' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** The flags over a base config (the file's, or the defaults). */
function applyFlags(base: GatewayConfig, f: Flags): GatewayConfig {
  const cfg: GatewayConfig = {
    ...applyFlagValues(base, f),
    routes: f.route ? f.route.map(parseRouteFlag) : base.routes,
    sni: f.sni ? f.sni.map((s) => parseSniFlag(s)) : base.sni,
  };
  return validateConfig(cfg, f.config ?? 'flags');
}

/** The whole config: the file (if any) under the flags. Throws a WsviaError naming the problem. */
function loadConfig(f: Flags): GatewayConfig {
  if (f.config === undefined) return applyFlags(EMPTY_CONFIG, f);
  // The file is validated as a whole after the flags are applied: they may supply the listener or routes.
  return applyFlags(configFromNode(loadConfigFile(f.config), f.config, { validate: false }), f);
}

/** The ready lines; under `--workers N` the listeners say how many processes share them, as `wsvia proxy`'s does. */
function announce(a: GatewayAddresses, workers = 1): void {
  const fmt = (x: { address: string; port: number }): string =>
    `${x.address.includes(':') ? `[${x.address}]` : x.address}:${x.port}`;
  const shared = workers > 1 ? ` (${workers} workers)` : '';
  if (a.listen) process.stderr.write(`wsvia gateway listening on http://${fmt(a.listen)}${shared}\n`);
  if (a.tls) process.stderr.write(`wsvia gateway listening on https://${fmt(a.tls)}${shared}\n`);
  if (a.admin) process.stderr.write(`wsvia gateway admin on http://${fmt(a.admin)}\n`);
}

export async function run(argv: string[]): Promise<number> {
  tuneHeapForLongLivedSockets();
  let flags: Flags;
  let config: GatewayConfig;
  let workers = 1;
  let loadedFrom: string | undefined;
  try {
    ({ values: flags } = parseArgs({ args: argv, options: OPTIONS, strict: true }));
    if (flags.help) {
      process.stdout.write(usage);
      return EXIT_CODES.ok;
    }
    if (flags.watch && !flags.config) throw new UsageError('--watch needs --config');
    if (flags.workers !== undefined && !/^([1-9]|[1-5]\d|6[0-4])$/.test(flags.workers))
      throw new UsageError(`--workers expects 1 to 64, got ${JSON.stringify(flags.workers)}`);
    workers = Number(flags.workers ?? 1);
    // Taken before the file is read: a save from here until the watch starts is still seen as a change.
    loadedFrom = flags.watch && flags.config ? configSignature(flags.config) : undefined;
    config = loadConfig(flags);
    const relay = gatewayRelayDecision(config.relay);
    // `native` is refused where it cannot run, rather than quietly relaying in JavaScript.
    if (config.relay === 'native' && relay.relay !== 'native')
      throw new UsageError(`--relay native cannot run here: ${relay.why} (use auto or js)`);
    // The gateway re-reads them on SIGHUP; a file that cannot be used at start is a configuration error.
    if (config.tls.listen !== undefined) readTlsFiles(config.tls.cert, config.tls.key);
  } catch (e) {
    return reportUsage(e, 'gateway');
  }
  if (workers > 1 && cluster.isPrimary) return runGatewayPrimary(workers, argv, config);

  const inWorker = cluster.isWorker;
  // Under --workers the primary serves the admin listener for all workers (serve/cluster-admin.ts).
  if (inWorker) config = { ...config, admin: undefined };
  let gateway: Gateway;
  try {
    gateway = new Gateway(config, {
      accessLog: openAccessLog(config.accessLog, 'gateway'),
      relay: sniRelayChoice(config.relay),
    });
    const addresses = await gateway.start();
    if (inWorker) {
      answerAdminRequests(gateway.adminPages());
      tellPrimaryListening(addresses);
    } else {
      const relay = gatewayRelayDecision(config.relay);
      process.stderr.write(`wsvia gateway relay: ${relay.relay} (${relay.why})\n`);
      announce(addresses);
      if (config.sni.length > 0) {
        // Passthrough bytes are never decrypted: the TLS listener does not keep them in JavaScript.
        const relay = relayDecision(sniRelayChoice(config.relay), false);
        process.stderr.write(`wsvia gateway sni relay: ${relay.relay} (${relay.why})\n`);
      }
    }
  } catch (e) {
    return failStart(e);
  }

  let reloading = false;
  const reload = (why: string): void => {
    if (reloading) return;
    reloading = true;
    try {
      let next = loadConfig(flags);
      if (inWorker) next = { ...next, admin: undefined };
      gateway.reload(next);
      process.stderr.write(
        `wsvia gateway: reloaded (${why}): ${next.routes.length} routes, ${next.sni.length} SNI routes\n`,
      );
    } catch (e) {
      const msg = isWsviaError(e) ? formatError(e).trimEnd() : String(e);
      process.stderr.write(
        `wsvia gateway: reload failed (${why}), keeping the running configuration\n${msg}\n`,
      );
    } finally {
      reloading = false;
    }
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  const watcher =
    flags.watch && flags.config
      ? new ConfigWatch(flags.config, () => reload('file changed'), loadedFrom)
      : undefined;
  const signal = await waitForSignal();
  watcher?.close();
  // Workers stopped because another failed to start have nothing to drain, and nothing to say.
  if (!inWorker || gateway.openWebSockets > 0)
    process.stderr.write(`wsvia gateway: ${signal}: draining ${gateway.openWebSockets} WebSockets\n`);
  const left = await gateway.drain();
  if (left > 0)
    process.stderr.write(`wsvia gateway: ${left} WebSockets still open at the drain timeout, cut\n`);
  // A worker's IPC channel to the primary would keep it alive.
  cluster.worker?.disconnect();
  return EXIT_CODES.ok;
}

/** SNI passthrough follows `--relay`: `native` is the splice relay there, `js` and `auto` mean the same. */
function sniRelayChoice(relay: GatewayRelayChoice): RelayChoice {
  return relay === 'native' ? 'splice' : relay;
}

/**
 * --workers N: N copies sharing the listening sockets (node:cluster, cli/cluster-primary.ts); the primary serves the
 * admin listener for all of them (merged /metrics; /healthz 503 from SIGTERM until the last worker exits).
 */
async function runGatewayPrimary(workers: number, argv: string[], config: GatewayConfig): Promise<number> {
  let admin: ClusterAdmin | undefined;
  let adminAddress: AddressInfo | undefined;
  try {
    if (config.admin !== undefined) {
      admin = new ClusterAdmin(['/routes']);
      const { host, port } = parseHostPort(config.admin, '--admin', 'admin');
      await admin.listen(host, port, 'admin');
      adminAddress = admin.address();
    }
  } catch (e) {
    return failStart(e);
  }
  return runPrimary({
    command: 'gateway',
    workers,
    admin,
    settings: { args: ['gateway', ...argv] },
    forwardSighup: true,
    killAfterMs: config.limits.drainTimeout + config.limits.drainSpread + 5000,
    // Every worker shares the same ports.
    announce: ([first]) => announce({ ...(first as GatewayAddresses), admin: adminAddress }, workers),
  });
}
