/**
 * `npm run soak [-- --minutes N --seed S --parallel P]`: every part of wsvia at once, as real processes on
 * loopback, under the fault relay, with a mixed load, for a bounded time (default 5 minutes). Not part of `npm test`.
 *
 * Paths: `wsvia tunnel -L` -> faults -> `wsvia bridge` -> TCP echo; `wsvia tunnel -L` -> faults -> `wsvia proxy` ->
 * bridge; CONNECT through `wsvia proxy` -> faults -> TCP echo; `connect()` -> faults -> proxy -> `wsvia echo`;
 * a WebSocket to `wsvia gateway` -> faults -> `wsvia echo`. Each session sends 1 to 256 KiB of seeded bytes and
 * is counted exact, failed (by reason) or silent (a clean end with wrong bytes). Prints the counts, each process's
 * RSS at start, peak and end and its open descriptors at start and end; exits 1 if any session was silently short,
 * if an RSS ended more than 30 MB above its start, or if descriptors did not come back once the load stopped.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { connect } from '../../src/client/connect.js';
import { BadProxyList } from '../../src/dial/bad-proxies.js';
import { rssKiB } from '../../bench/procfs.js';
import { between, FAULT_KINDS, prng, startFaultRelay, type FaultRelay } from '../helpers/fault-relay.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { startTunnelCli, type RunningTunnel } from './parts.js';
import {
  dialConnect,
  dialTcp,
  reasonOf,
  seededBytes,
  Tally,
  tcpSession,
  wsSession,
  type Outcome,
} from './sessions.js';
import WebSocket from 'ws';

const RSS_SLACK_KIB = 30 * 1024;
const DEADLINE = 10_000;
/** Every fault, and as many clean connections again as faulty ones of each kind, so most sessions carry bytes. */
const KINDS = [...FAULT_KINDS, 'none', 'none'] as const;

interface Watched {
  readonly name: string;
  readonly pid: number;
  rssStart: number;
  rssPeak: number;
  rssEnd: number;
  fdsStart: number;
  fdsEnd: number;
}

function fds(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** What `pid` holds open (each descriptor's target) and its TCP sockets as `ss` shows them. */
function descriptorsOf(pid: number): string {
  const targets = fs
    .readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return `${fd} -> ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
      } catch {
        return `${fd} (gone)`;
      }
    })
    .join(', ');
  let sockets = '(ss is not available)';
  try {
    sockets = execFileSync('ss', ['-tanp'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(`pid=${pid},`))
      .join('\n');
  } catch {
    // ss is optional: the descriptor list says enough
  }
  return `${targets}\n${sockets}`;
}

function options(): { minutes: number; seed: number; parallel: number } {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '5' },
      seed: { type: 'string' },
      parallel: { type: 'string', default: '8' },
    },
  });
  const minutes = Number(values.minutes);
  const parallel = Number(values.parallel);
  if (!(minutes > 0 && minutes <= 120)) throw new Error('--minutes: a number of minutes, at most 120');
  if (!(Number.isInteger(parallel) && parallel > 0 && parallel <= 256))
    throw new Error('--parallel: 1 to 256');
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  return { minutes, seed, parallel };
}

/** The running system: wsvia processes, the echoes behind them, the fault relays between them. */
class System {
  readonly tally = new Map<string, Tally>();
  readonly watched: Watched[] = [];
  readonly relays: FaultRelay[] = [];
  #stops: (() => Promise<unknown>)[] = [];
  #echo!: TcpPeer;
  #wsEcho!: RunningServer;
  #proxy!: RunningServer;
  #gateway!: RunningServer;
  #tunnels: RunningTunnel[] = [];
  #connectRelay!: FaultRelay;
  #clientRelay!: FaultRelay;

  async start(seed: number): Promise<void> {
    this.#echo = await startTcpEcho();
    this.#stops.push(() => this.#echo.close());
    const [wsEcho, bridge, proxy] = await Promise.all([
      startServerCli('echo', ['--port', '0']),
      startServerCli('bridge', ['--listen', '127.0.0.1:0', '--target', `127.0.0.1:${this.#echo.port}`]),
      startServerCli('proxy', ['--port', '0', '--allow', '127.0.0.1', '--allow-ports', '*']),
    ]);
    this.#wsEcho = wsEcho;
    this.#proxy = proxy;
    const relay = async (port: number, n: number): Promise<FaultRelay> => {
      const r = await startFaultRelay({
        targetPort: port,
        seed: seed + n,
        kinds: KINDS,
        spanBytes: 128 * 1024,
      });
      this.relays.push(r);
      return r;
    };
    const toBridge = await relay(bridge.port, 1);
    const toProxy = await relay(proxy.port, 2);
    this.#connectRelay = await relay(this.#echo.port, 3);
    this.#clientRelay = await relay(proxy.port, 4);
    const toEcho = await relay(wsEcho.port, 5);
    this.#gateway = await startServerCli('gateway', [
      '--listen',
      '127.0.0.1:0',
      '--route',
      `/=ws://127.0.0.1:${toEcho.port}`,
      '--connect-timeout',
      '3',
    ]);
    this.#tunnels = await Promise.all([
      startTunnelCli([`ws://127.0.0.1:${toBridge.port}/`, '--timeout', '3']),
      startTunnelCli([
        `ws://127.0.0.1:${bridge.port}/`,
        '-x',
        `http://127.0.0.1:${toProxy.port}`,
        '--timeout',
        '3',
      ]),
    ]);
    const servers: [string, RunningServer | RunningTunnel][] = [
      ['echo', wsEcho],
      ['bridge', bridge],
      ['proxy', proxy],
      ['gateway', this.#gateway],
      ['tunnel', this.#tunnels[0] as RunningTunnel],
      ['tunnel -x', this.#tunnels[1] as RunningTunnel],
    ];
    for (const [name, s] of servers) {
      this.#stops.push(() => s.stop());
      const pid = s.process.pid as number;
      this.watched.push({ name, pid, rssStart: 0, rssPeak: 0, rssEnd: 0, fdsStart: 0, fdsEnd: 0 });
    }
  }

  /** One session on the path `path`, with `data`. */
  session(path: string, data: Buffer): Promise<Outcome> {
    switch (path) {
      case 'tunnel':
        return tcpSession(() => dialTcp((this.#tunnels[0] as RunningTunnel).port), data, DEADLINE);
      case 'tunnel via proxy':
        return tcpSession(() => dialTcp((this.#tunnels[1] as RunningTunnel).port), data, DEADLINE);
      case 'proxy CONNECT':
        return tcpSession(
          () => dialConnect(this.#proxy.port, `127.0.0.1:${this.#connectRelay.port}`),
          data,
          DEADLINE,
        );
      case 'client via proxy':
        return this.#ws(
          () =>
            connect(`ws://127.0.0.1:${this.#wsEcho.port}/`, {
              proxy: `http://127.0.0.1:${this.#clientRelay.port}`,
              badProxies: new BadProxyList(),
              timeouts: { tcp: 3000, tunnel: 3000, upgrade: 3000 },
            }),
          data,
        );
      default:
        return this.#ws(() => openWebSocket(`ws://127.0.0.1:${this.#gateway.port}/`), data);
    }
  }

  async #ws(open: () => Promise<WebSocket>, data: Buffer): Promise<Outcome> {
    let ws;
    try {
      ws = await open();
    } catch (e) {
      return { kind: 'failed', reason: `open: ${reasonOf(e)}` };
    }
    return wsSession(ws, data, 16 * 1024, DEADLINE);
  }

  /** Reads every process's RSS into its peak, and into `field` when given. */
  sample(field?: 'rssStart' | 'rssEnd'): void {
    for (const w of this.watched) {
      const kib = rssKiB(w.pid);
      if (field) w[field] = kib;
      w.rssPeak = Math.max(w.rssPeak, kib);
    }
  }

  async stop(): Promise<void> {
    for (const r of this.relays) await r.close();
    for (const s of this.#stops.reverse()) await s().catch(() => {});
  }
}

const PATHS = ['tunnel', 'tunnel via proxy', 'proxy CONNECT', 'client via proxy', 'gateway'] as const;

function openWebSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: 3000 });
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

/** Keeps `parallel` sessions going until `until`, each on a path and with a size the seed chooses. */
async function load(system: System, seed: number, parallel: number, until: number): Promise<void> {
  const random = prng(seed);
  let n = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < until) {
      const i = n++;
      const path = PATHS[between(random, 0, PATHS.length - 1)] as string;
      const data = seededBytes(seed + i, between(random, 1, 256) * 1024);
      const outcome = await system.session(path, data);
      let t = system.tally.get(path);
      if (!t) system.tally.set(path, (t = new Tally()));
      t.add(outcome, `${path} #${i}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

const mb = (kib: number): string => (kib / 1024).toFixed(1);

function report(system: System, o: { minutes: number; seed: number; parallel: number }): boolean {
  const all = new Tally();
  const lines = [`wsvia soak: ${o.minutes} min, seed ${o.seed}, ${o.parallel} sessions at once`, ''];
  lines.push('path                sessions   exact  failed  silent   MiB exact');
  for (const [path, t] of system.tally) {
    lines.push(
      `${path.padEnd(18)} ${String(t.sessions).padStart(9)} ${String(t.exact).padStart(7)} ${String(t.failed).padStart(7)} ${String(t.silent.length).padStart(7)} ${(t.bytes / 1048576).toFixed(1).padStart(11)}`,
    );
    all.exact += t.exact;
    all.bytes += t.bytes;
    all.silent.push(...t.silent);
    for (const [k, v] of t.failures) all.failures.set(k, (all.failures.get(k) ?? 0) + v);
  }
  lines.push(
    '',
    `total: ${all.sessions} sessions, ${all.exact} exact (${(all.bytes / 1048576).toFixed(1)} MiB each way), ${all.failed} failed, ${all.silent.length} silent`,
  );
  lines.push(`failures by kind: ${[...all.failures].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  const plans = new Map<string, number>();
  for (const r of system.relays) for (const p of r.plans) plans.set(p.kind, (plans.get(p.kind) ?? 0) + 1);
  lines.push(`faults injected (connections): ${[...plans].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const s of all.silent) lines.push(`SILENT: ${s}`);
  lines.push('', 'process     RSS MB start   peak    end   fds start  end');
  let ok = all.silent.length === 0;
  for (const w of system.watched) {
    const rssOk = w.rssEnd - w.rssStart <= RSS_SLACK_KIB;
    const fdOk = w.fdsEnd <= w.fdsStart;
    ok &&= rssOk && fdOk;
    lines.push(
      `${w.name.padEnd(10)} ${mb(w.rssStart).padStart(13)} ${mb(w.rssPeak).padStart(6)} ${mb(w.rssEnd).padStart(6)} ${String(w.fdsStart).padStart(11)} ${String(w.fdsEnd).padStart(4)}${rssOk ? '' : '  RSS GREW'}${fdOk ? '' : '  FDS LEFT OPEN'}`,
    );
  }
  lines.push('', ok ? 'soak: ok' : 'soak: FAILED');
  process.stdout.write(`${lines.join('\n')}\n`);
  return ok;
}

async function main(): Promise<number> {
  const o = options();
  const system = new System();
  try {
    await system.start(o.seed);
    system.sample('rssStart');
    for (const w of system.watched) w.fdsStart = fds(w.pid);
    const sampler = setInterval(() => system.sample(), 1000);
    await load(system, o.seed, o.parallel, Date.now() + o.minutes * 60_000);
    clearInterval(sampler);
    // The load has stopped: the network goes too (a half-open path holds its connections until then).
    for (const r of system.relays) await r.close();
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && system.watched.some((w) => fds(w.pid) > w.fdsStart))
      await new Promise((r) => setTimeout(r, 500));
    for (const w of system.watched) {
      w.fdsEnd = fds(w.pid);
      if (w.fdsEnd > w.fdsStart) process.stdout.write(`${w.name} still holds:\n${descriptorsOf(w.pid)}\n`);
    }
    system.sample('rssEnd');
    return report(system, o) ? 0 : 1;
  } finally {
    await system.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
