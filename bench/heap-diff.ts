/**
 * What an idle connection keeps (issue 15): starts `wsvia gateway` and `wsvia proxy` under the inspector, opens
 * and closes a few connections (code loading is not charged to the connections), takes a heap snapshot, holds
 * `--count` idle connections (WebSockets through the gateway, CONNECT tunnels through the proxy), takes another,
 * and prints the difference by constructor per connection: count, self size, retained size; beside it RSS (from
 * /proc), `process.memoryUsage()` (heap, ArrayBuffers, external) and the active handles, all after a full GC.
 *
 *   npm run build && node dist/bench/heap-diff.js [--count 2000] [--part gateway|proxy|proxy-js] [--top 25]
 *     [--rss-runs N]   (the RSS pass only, N fresh processes: for A/B runs)
 *
 * The upstreams run in a child process of their own (bench/targets.ts); the idle clients in this one.
 * `WSVIA_BENCH_GATEWAY_MAIN` / `WSVIA_BENCH_PROXY_MAIN` measure another build's main.js (before and after).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { diffSummaries, summarizeHeap, type HeapSummary } from './heap-snapshot.js';
import { wsviaMain, type WsviaPart } from './peers.js';

const HOST = '127.0.0.1';

interface Targets {
  readonly sinkPort: number;
  readonly wsPort: number;
}

/** A child and the lines it wrote on one stream so far. */
function spawnWithOutput(
  args: string[],
  stream: 'stdout' | 'stderr',
): { child: ChildProcess; text: () => string } {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  child[stream]?.on('data', (d: Buffer) => (text += d.toString()));
  child.on('error', () => {});
  return { child, text: () => text };
}

async function waitFor(what: string, f: () => RegExpExecArray | null, ms = 15_000): Promise<RegExpExecArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = f();
    if (m) return m;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A minimal DevTools protocol client over the inspector's WebSocket. */
class Inspector {
  readonly #ws: WebSocket;
  #id = 0;
  readonly #waiting = new Map<number, (r: { result?: unknown; error?: unknown }) => void>();
  #chunks: string[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as {
        id?: number;
        method?: string;
        params?: { chunk?: string };
        result?: unknown;
        error?: unknown;
      };
      if (m.method === 'HeapProfiler.addHeapSnapshotChunk') this.#chunks.push(m.params?.chunk ?? '');
      else if (m.id !== undefined) this.#waiting.get(m.id)?.(m);
    });
  }

  static async open(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { maxPayload: 1 << 30 });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new Inspector(ws);
  }

  async call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#id;
    const reply = new Promise<{ result?: unknown; error?: unknown }>((resolve) =>
      this.#waiting.set(id, resolve),
    );
    this.#ws.send(JSON.stringify({ id, method, params }));
    const r = await reply;
    this.#waiting.delete(id);
    if (r.error !== undefined) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
    return r.result;
  }

  /** Evaluates `expression` in the process and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.call('Runtime.evaluate', { expression, returnByValue: true })) as {
      result: { value: T };
    };
    return r.result.value;
  }

  /** A full snapshot (V8 collects garbage first), summarized as it arrives. */
  async snapshot(saveAs?: string): Promise<HeapSummary> {
    this.#chunks = [];
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    const text = this.#chunks.join('');
    this.#chunks = [];
    if (saveAs !== undefined) fs.writeFileSync(saveAs, text);
    return summarizeHeap(JSON.parse(text) as Parameters<typeof summarizeHeap>[0]);
  }

  close(): void {
    this.#ws.close();
  }
}

interface Usage {
  rssNoGc: number;
  heapNoGc: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  handles: number;
}

function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

async function usage(insp: Inspector, pid: number): Promise<Usage> {
  // What the bench sees from outside: RSS with the setup's garbage not yet collected.
  const rssNoGc = rssOf(pid);
  const heapNoGc = await insp.evaluate<number>('process.memoryUsage().heapUsed');
  await insp.call('HeapProfiler.collectGarbage');
  const m = await insp.evaluate<Omit<Usage, 'rss' | 'rssNoGc' | 'heapNoGc'>>(
    'JSON.parse(JSON.stringify({...process.memoryUsage(), handles: process._getActiveHandles().length}))',
  );
  return { ...m, rss: rssOf(pid), rssNoGc, heapNoGc };
}

/** Opens one idle connection through the measured server; resolves once it is established end to end. */
type Opener = (port: number, targets: Targets) => Promise<net.Socket>;

/** A WebSocket upgrade by hand (no `ws` client objects on this side: only the gateway's memory is measured). */
const openWebSocket: Opener = (port) =>
  new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port });
    s.once('error', reject);
    s.write(
      'GET /idle HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.removeListener('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(head.split('\r\n')[0]));
      else resolve(s);
    };
    s.on('data', onData);
  });

/** A CONNECT tunnel to the targets' TCP sink (which holds silent connections open). */
const openTunnel: Opener = (port, targets) =>
  new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port });
    s.once('error', reject);
    s.write(`CONNECT ${HOST}:${targets.sinkPort} HTTP/1.1\r\nHost: ${HOST}:${targets.sinkPort}\r\n\r\n`);
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.removeListener('data', onData);
      if (!/^HTTP\/1\.1 200/.test(head)) reject(new Error(head.split('\r\n')[0]));
      else resolve(s);
    };
    s.on('data', onData);
  });

async function openMany(n: number, open: () => Promise<net.Socket>): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  // 50 at a time: a steady stream of new connections, as the bench's idle job opens them.
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, open));
    for (const s of batch) s.on('error', () => {});
    out.push(...batch);
  }
  return out;
}

/** Every connection comes from 127.0.0.1 to a loopback sink: lift the limits and allow it. */
const PROXY_FLAGS = [
  '--allow-private',
  '--allow-ports',
  '*',
  '--max-tunnels',
  '20000',
  '--max-tunnels-per-client',
  '20000',
];

interface Part {
  readonly key: string;
  readonly name: string;
  readonly args: (t: Targets) => string[];
  readonly listening: RegExp;
  readonly open: Opener;
}

const PARTS: Record<string, Part> = {
  gateway: {
    key: 'gateway',
    name: 'wsvia gateway (idle WebSockets)',
    args: (t) => [
      'gateway',
      '--listen',
      `${HOST}:0`,
      '--route',
      `/=ws://${HOST}:${t.wsPort}`,
      '--max-connections',
      '20000',
      '--max-per-client',
      '20000',
    ],
    listening: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    open: openWebSocket,
  },
  proxy: {
    key: 'proxy',
    name: 'wsvia proxy (idle CONNECT tunnels, --relay auto)',
    args: () => ['proxy', '--listen', `${HOST}:0`, ...PROXY_FLAGS],
    listening: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    open: openTunnel,
  },
  'proxy-js': {
    key: 'proxy-js',
    name: 'wsvia proxy (idle CONNECT tunnels, --relay js)',
    args: () => ['proxy', '--listen', `${HOST}:0`, ...PROXY_FLAGS, '--relay', 'js'],
    listening: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    open: openTunnel,
  },
};

const kib = (bytes: number): string => (bytes / 1024).toFixed(2);

function printUsage(before: Usage, after: Usage, n: number): void {
  console.log('| per connection | KiB |');
  console.log('| --- | ---: |');
  console.log(`| rss before a GC | ${kib((after.rssNoGc - before.rssNoGc) / n)} |`);
  console.log(`| heapUsed before a GC | ${kib((after.heapNoGc - before.heapNoGc) / n)} |`);
  for (const k of ['rss', 'heapUsed', 'heapTotal', 'external', 'arrayBuffers'] as const)
    console.log(`| ${k} | ${kib((after[k] - before[k]) / n)} |`);
  console.log(`| active handles | ${((after.handles - before.handles) / n).toFixed(2)} per connection |`);
}

async function measure(
  part: Part,
  targets: Targets,
  o: { count: number; top: number; snapshots: boolean; save: string | undefined },
): Promise<void> {
  const { count, top, snapshots, save } = o;
  const args = part.args(targets);
  const main = wsviaMain(args[0] as WsviaPart);
  const server = spawnWithOutput(['--inspect=127.0.0.1:0', main, ...args], 'stderr');
  const sockets: net.Socket[] = [];
  let insp: Inspector | undefined;
  try {
    const url = (
      await waitFor('inspector URL', () => /(ws:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(server.text()))
    )[1];
    const port = Number((await waitFor('listening line', () => part.listening.exec(server.text())))[1]);
    insp = await Inspector.open(url as string);
    await insp.call('HeapProfiler.enable');
    const open = (): Promise<net.Socket> => part.open(port, targets);
    // Warm-up: the code paths run (and compile) once before the first snapshot.
    for (const s of await openMany(100, open)) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const pid = server.child.pid as number;
    const before = await usage(insp, pid);
    // A snapshot grows the process by far more than the connections do: RSS is read in a run without one.
    const heapBefore = snapshots ? await insp.snapshot() : undefined;
    sockets.push(...(await openMany(count, open)));
    await new Promise((r) => setTimeout(r, 1000));
    const after = await usage(insp, pid);
    if (!heapBefore) {
      console.log(`\n## ${part.name}: ${count} idle connections, after a full GC\n`);
      printUsage(before, after, count);
      return;
    }
    // --save DIR keeps the second snapshot, for DevTools' Memory tab (retainers of one object).
    const heapAfter = await insp.snapshot(
      save === undefined ? undefined : `${save}/${part.key}.heapsnapshot`,
    );
    console.log(`\nHeap snapshot diff per connection (${count} connections, \`${part.name}\`):`);
    console.log('\n| constructor | count | self B | retained B |');
    console.log('| --- | ---: | ---: | ---: |');
    const rows = diffSummaries(heapBefore, heapAfter, count).filter((r) => Math.abs(r.selfBytes) >= 1);
    for (const r of rows.slice(0, top))
      console.log(
        `| ${r.key.replace(/\|/g, '\\|')} | ${r.count.toFixed(2)} | ${r.selfBytes.toFixed(0)} | ${r.retainedBytes.toFixed(0)} |`,
      );
    const total = rows.reduce((a, r) => a + r.selfBytes, 0);
    console.log(`| (all) | | ${total.toFixed(0)} | |`);
  } finally {
    insp?.close();
    for (const s of sockets) s.destroy();
    server.child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '2000' },
      part: { type: 'string', multiple: true },
      top: { type: 'string', default: '25' },
      save: { type: 'string' },
      // Only the RSS pass, this many times (fresh processes): A/B runs on a shared machine need several.
      'rss-runs': { type: 'string' },
    },
  });
  const rssRuns = values['rss-runs'] === undefined ? undefined : Number(values['rss-runs']);
  const parts = values.part ?? ['gateway', 'proxy-js', 'proxy'];
  const targetsProc = spawnWithOutput([new URL('./targets.js', import.meta.url).pathname], 'stdout');
  try {
    const line = await waitFor('targets', () => /^\{.*\}$/m.exec(targetsProc.text()));
    const targets = JSON.parse(line[0]) as Targets;
    for (const name of parts) {
      const part = PARTS[name];
      if (!part) throw new Error(`unknown part ${name}: ${Object.keys(PARTS).join(', ')}`);
      const o = { count: Number(values.count), top: Number(values.top), save: values.save };
      for (let i = 0; i < (rssRuns ?? 1); i++) await measure(part, targets, { ...o, snapshots: false });
      if (rssRuns === undefined) await measure(part, targets, { ...o, snapshots: true });
    }
  } finally {
    targetsProc.child.kill('SIGTERM');
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
