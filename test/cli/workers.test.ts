/**
 * `--workers N` as one server from outside: whichever process answers the scrape, `/metrics` counts every worker's
 * connections, and `/healthz` turns 503 the moment a drain starts while the admin listener stays up until exit.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type WebSocket from 'ws';
import { openWs, startUpstream, type Upstream } from '../gateway/peers.js';
import { until } from '../helpers/eventually.js';
import { freePort, startPeer, type Peer } from '../helpers/process.js';

const MAIN = path.resolve('dist/src/cli/main.js');

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

/** The value of one series in an exposition text, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The sum of every series of a family (all label sets). */
function total(text: string, family: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${family}{`) || l.startsWith(`${family} `))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('gateway --workers 2 with --admin', () => {
  let upstream: Upstream;
  before(async () => {
    upstream = await startUpstream('a');
  });
  after(() => upstream.close());

  it('announces its 2 workers; /metrics sums both workers’ WebSockets; /healthz is 503 from SIGTERM while they drain; the admin answers until exit', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const args = [
      'gateway',
      '--listen',
      `127.0.0.1:${port}`,
      '--route',
      `/=${upstream.url}`,
      '--workers',
      '2',
    ];
    args.push('--admin', `127.0.0.1:${adminPort}`, '--drain-timeout', '6', '--drain-spread', '0.1');
    const gw = await startPeer(process.execPath, [MAIN, ...args], { port });
    const admin = `http://127.0.0.1:${adminPort}`;
    const sockets: WebSocket[] = [];
    try {
      await until('the listening line', () => /admin on http:\/\/127\.0\.0\.1:\d+/.test(gw.output()));
      // As wsvia proxy says it: one listener shared by the workers.
      assert.match(
        gw.output(),
        new RegExp(`wsvia gateway listening on http://127\\.0\\.0\\.1:${port} \\(2 workers\\)\\n`),
      );
      for (let i = 0; i < 4; i++) sockets.push((await openWs(`ws://127.0.0.1:${port}/`)).ws);
      const metrics = (await get(`${admin}/metrics`)).body;
      assert.equal(total(metrics, 'wsvia_gateway_websockets_total'), 4, metrics);
      assert.equal(value(metrics, 'wsvia_workers'), 2, metrics);
      assert.equal(total(metrics, 'wsvia_gateway_websockets_open'), 4, metrics);
      assert.match((await get(`${admin}/routes`)).body, /"\/"/);
      assert.equal((await get(`${admin}/healthz`)).status, 200);

      // The clients stop reading: their WebSockets stay open through the drain, up to its timeout.
      for (const ws of sockets) (ws as unknown as { _socket: net.Socket })._socket.pause();
      const exited = new Promise<number | null>((resolve) => gw.process.once('exit', (c) => resolve(c)));
      gw.process.kill('SIGTERM');
      await until('/healthz says draining', async () => (await get(`${admin}/healthz`)).status === 503);
      assert.equal(
        (await get(`${admin}/metrics`)).status,
        200,
        'the admin listener stays up during the drain',
      );
      assert.equal(await exited, 0);
      await assert.rejects(
        fetch(`${admin}/healthz`),
        'the admin listener is gone once the process has exited',
      );
    } finally {
      for (const ws of sockets) ws.terminate();
      await gw.stop();
    }
  });
});

describe('proxy --workers 2 with --admin', () => {
  let sink: EchoSink;
  before(async () => {
    sink = await echoSink();
  });
  after(() => sink.close());

  it('/metrics counts the tunnels of both workers', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const args = ['proxy', '--port', String(port), '--allow-private', '--allow-ports', String(sink.port)];
    args.push('--workers', '2', '--admin', `127.0.0.1:${adminPort}`, '--drain-timeout', '1');
    const proxy = await startPeer(process.execPath, [MAIN, ...args], { port });
    try {
      await until('the listening line', () => /listening on/.test(proxy.output()));
      for (let i = 0; i < 4; i++) await tunnelRoundTrip(port, sink.port, `m${i}`);
      const metrics = (await get(`http://127.0.0.1:${adminPort}/metrics`)).body;
      assert.equal(total(metrics, 'wsvia_proxy_tunnels_total'), 4, metrics);
      assert.equal(value(metrics, 'wsvia_workers'), 2, metrics);
    } finally {
      await proxy.stop();
    }
  });
});

describe('proxy --workers 2: how the workers end', () => {
  let sink: EchoSink;
  before(async () => {
    sink = await echoSink();
  });
  after(() => sink.close());

  async function start(): Promise<{ proxy: Peer; port: number; exited: Promise<number | null> }> {
    const port = await freePort();
    const args = ['proxy', '--port', String(port), '--allow-private', '--allow-ports', String(sink.port)];
    args.push('--workers', '2', '--drain-timeout', '1');
    const proxy = await startPeer(process.execPath, [MAIN, ...args], { port });
    const exited = new Promise<number | null>((resolve) => proxy.process.once('exit', (c) => resolve(c)));
    await until('the listening line', () => /listening on .*\(2 workers\)/.test(proxy.output()));
    return { proxy, port, exited };
  }

  it(
    'SIGTERM with no tunnel open: both workers end by themselves, exit 0, none is killed at the drain limit',
    { timeout: 30_000 },
    async () => {
      const { proxy, port, exited } = await start();
      try {
        await tunnelRoundTrip(port, sink.port, 'before');
        proxy.process.kill('SIGTERM');
        // The primary kills what still runs 6 s (drain 1 s + 5 s) after SIGTERM and says so; the workers used to
        // stay alive on their IPC channel until then.
        assert.equal(await exited, 0, proxy.output());
        assert.doesNotMatch(proxy.output(), /killed|exited \(/);
      } finally {
        await proxy.stop();
      }
    },
  );

  it(
    'a worker killed from outside is reported, the other serves on, and the exit code says a worker failed',
    { timeout: 30_000 },
    async () => {
      const { proxy, port, exited } = await start();
      try {
        const workers = childPids(proxy.process.pid ?? 0);
        assert.equal(workers.length, 2, `two workers expected, found ${workers.join(', ')}`);
        process.kill(workers[0] ?? 0, 'SIGKILL');
        await until('the primary reports the lost worker', () =>
          /wsvia proxy: worker [12] exited \(killed\), 1 still serving/.test(proxy.output()),
        );
        for (let i = 0; i < 4; i++) await tunnelRoundTrip(port, sink.port, `after${i}`);
        proxy.process.kill('SIGTERM');
        assert.equal(await exited, 1, proxy.output());
      } finally {
        await proxy.stop();
      }
    },
  );
});

describe('proxy --workers 2: a worker killed while connections are handed to it', () => {
  it(
    'SIGTERM still ends the primary, exit 1: a channel with a connection in flight to a dead worker is not waited for',
    {
      timeout: 30_000,
    },
    async () => {
      const port = await freePort();
      const args = ['proxy', '--port', String(port), '--allow-private', '--allow-ports', '9'];
      args.push('--workers', '2', '--drain-timeout', '1');
      const proxy = await startPeer(process.execPath, [MAIN, ...args], { port });
      const sockets: net.Socket[] = [];
      try {
        const exited = new Promise<number | null>((resolve) => proxy.process.once('exit', (c) => resolve(c)));
        await until('the listening line', () => /listening on .*\(2 workers\)/.test(proxy.output()));
        const [first] = childPids(proxy.process.pid ?? 0);
        process.kill(first ?? 0, 'SIGKILL');
        // Before the primary has seen the exit, round-robin still hands connections to the dead worker: their
        // channel then never reports its end (the primary hung here, with no worker left, until killed).
        for (let i = 0; i < 20; i++) sockets.push(net.connect(port, '127.0.0.1').on('error', () => {}));
        await until('the primary reports the lost worker', () =>
          /exited \(killed\), 1 still serving/.test(proxy.output()),
        );
        proxy.process.kill('SIGTERM');
        assert.equal(await exited, 1, proxy.output());
      } finally {
        for (const s of sockets) s.destroy();
        await proxy.stop();
      }
    },
  );
});

interface EchoSink {
  readonly port: number;
  close(): Promise<void>;
}

/** A TCP echo on loopback for tunnels to reach. */
async function echoSink(): Promise<EchoSink> {
  const server = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The pids of a process's children (Linux: /proc/PID/task/PID/children). */
function childPids(pid: number): number[] {
  const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return text.split(' ').filter(Boolean).map(Number);
}

/** One CONNECT tunnel to the sink: the 200, one echoed message, then a close; resolves once the proxy closed it. */
function tunnelRoundTrip(proxyPort: number, target: number, message: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1');
    let got = '';
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/^HTTP\/1\.1 200[^]*\r\n\r\n$/.test(got)) s.write(message);
      if (got.endsWith(message)) s.end();
    });
    s.on('close', () => (got.endsWith(message) ? resolve() : reject(new Error(`tunnel answered: ${got}`))));
    s.write(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\nHost: 127.0.0.1:${target}\r\n\r\n`);
  });
}
