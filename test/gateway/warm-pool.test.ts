/**
 * The warm upstream pool, seen from the upstream's side of real sockets: connections dialed before any client, one
 * upgrade per connection, upstreams that close idle connections or close every connection at once, an upstream
 * that stops, `--warm 0`, and close/drain leaving nothing open.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { warmTargets } from '../../src/gateway/warm-pool.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { until } from '../helpers/eventually.js';
import { closed, configFromYaml, startGateway, type TestGateway } from './peers.js';

/** What the upstream saw of one TCP connection. */
interface Seen {
  readonly at: number;
  readonly socket: net.Socket;
  upgrades: number;
  open: boolean;
  /** When its upgrade request arrived, and when the upstream answered it (101). */
  requestAt?: number;
  answeredAt?: number;
}

/** How the upstream treats its `index`-th connection. */
type Behaviour = (index: number) => 'serve' | 'close-on-request' | 'close-at-once';

interface CountingUpstream {
  readonly port: number;
  readonly url: string;
  readonly seen: Seen[];
  open(): number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/**
 * A `ws` echo upstream that records every TCP connection it accepts and the upgrades each one carries.
 * `idleCloseMs`: a connection that sends no request within it is closed (an upstream's idle timeout).
 * `answerDelayMs`: the upstream takes this long to answer an upgrade request.
 */
async function startCountingUpstream(
  options: { behaviour?: Behaviour; idleCloseMs?: number; port?: number; answerDelayMs?: number } = {},
): Promise<CountingUpstream> {
  const seen: Seen[] = [];
  const web = http.createServer((_req, res) => res.end('ok'));
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  /** Idle-close timers by socket, cleared by the first request the HTTP server parses on it. */
  const idle = new Map<net.Socket, NodeJS.Timeout>();
  const busy = (socket: net.Socket): void => {
    clearTimeout(idle.get(socket));
    idle.delete(socket);
  };
  web.on('request', (req: http.IncomingMessage) => busy(req.socket));
  web.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    busy(req.socket);
    const s = seen.find((c) => c.socket === req.socket);
    if (s) s.upgrades++;
    if (s) s.requestAt = Date.now();
    const answer = (): void =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (s) s.answeredAt = Date.now();
        wss.emit('connection', ws, req);
      });
    if (options.answerDelayMs === undefined) answer();
    else setTimeout(answer, options.answerDelayMs);
  });
  const server = net.createServer((socket) => {
    const s: Seen = { at: Date.now(), socket, upgrades: 0, open: true };
    const index = seen.push(s) - 1;
    socket.on('error', () => {});
    socket.once('close', () => (s.open = false));
    const how = options.behaviour?.(index) ?? 'serve';
    if (how === 'close-at-once') return void socket.destroy();
    if (how === 'close-on-request') return void socket.once('data', () => socket.destroy());
    if (options.idleCloseMs !== undefined) {
      // Not a 'data' listener: Node 22's HTTP server reads the socket itself and emits none, and the timer cut
      // WebSockets already upgraded (the client then waited for an echo that never came).
      idle.set(
        socket,
        setTimeout(() => socket.destroy(), options.idleCloseMs),
      );
      socket.once('close', () => busy(socket));
    }
    web.emit('connection', socket);
  });
  await new Promise<void>((r) => server.listen(options.port ?? 0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    seen,
    open: () => seen.filter((s) => s.open).length,
    close: async () => {
      for (const s of seen) s.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      wss.close();
    },
  };
}

/** Opens a WebSocket, checks one echo, closes it; resolves with when the client started connecting. */
async function roundTrip(url: string): Promise<number> {
  const started = Date.now();
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
  ws.send('ping');
  const reply = await new Promise<string>((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve(data.toString()));
    // A WebSocket cut before its echo fails the test here, instead of leaving it waiting.
    ws.once('close', (code: number) => reject(new Error(`closed (${code}) before the echo`)));
  });
  assert.equal(reply, 'ping');
  ws.close();
  await closed(ws);
  return started;
}

function gatewayYaml(upstream: string, extra = ''): string {
  return `
listen: 127.0.0.1:0
admin: 127.0.0.1:0
${extra}
routes:
  - { path: /, upstream: ${upstream} }
`;
}

describe('gateway: the warm upstream pool', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  async function gatewayFor(up: CountingUpstream, extra = ''): Promise<TestGateway> {
    const gw = await startGateway(gatewayYaml(up.url, extra));
    cleanups.push(() => gw.gateway.close());
    return gw;
  }
  async function upstreamWith(options: Parameters<typeof startCountingUpstream>[0] = {}) {
    const up = await startCountingUpstream(options);
    cleanups.push(() => up.close());
    return up;
  }

  it('dials ahead: the upstream sees two connections before any client, counted in /metrics, not as clients', async () => {
    const up = await upstreamWith();
    const gw = await gatewayFor(up);
    await until('two warm connections', () => up.open() === 2);
    await until('the gauge', async () => {
      return (await gw.metric(`wsvia_gateway_upstream_warm_connections{upstream="${up.url}"}`)) === 2;
    });
    assert.equal(gw.gateway.connections, 0, 'no client slot is taken');
    assert.equal(await gw.metric('wsvia_gateway_connections_open'), 0);
  });

  it('each warm connection serves exactly one upgrade, and the first upgrade waits for no dial', async () => {
    const up = await upstreamWith();
    const gw = await gatewayFor(up);
    await until('two warm connections', () => up.open() === 2);
    const firstClient = await roundTrip(gw.wsUrl);
    for (let i = 0; i < 5; i++) await roundTrip(gw.wsUrl);
    const used = up.seen.filter((s) => s.upgrades > 0);
    assert.equal(used.length, 6, 'six upgrades on six connections');
    assert.ok(
      up.seen.every((s) => s.upgrades <= 1),
      'no connection carried two',
    );
    assert.ok((used[0] as Seen).at <= firstClient, 'the first upgrade went on a connection dialed before it');
    await until('the pool refilled', () => up.seen.filter((s) => s.open && s.upgrades === 0).length === 2);
  });

  it('the replacement is dialed once the 101 is relayed, not between the upgrade request and its answer', async () => {
    // A dial in that window cost the answer the connect and the upstream's accept (issue 15, setup latency).
    const up = await upstreamWith({ answerDelayMs: 150 });
    const gw = await gatewayFor(up);
    await until('two warm connections', () => up.open() === 2);
    await roundTrip(gw.wsUrl);
    const used = up.seen.find((s) => s.upgrades === 1) as Seen;
    const { requestAt = NaN, answeredAt = NaN } = used;
    assert.ok(answeredAt - requestAt >= 100, `the upstream answered after ${answeredAt - requestAt} ms`);
    const dialedMeanwhile = up.seen.filter((s) => s.at >= requestAt && s.at < answeredAt);
    assert.equal(dialedMeanwhile.length, 0, 'no dial while the upgrade waited for its answer');
    await until('the pool refilled', () => up.seen.filter((s) => s.open && s.upgrades === 0).length === 2);
  });

  it('an upstream that closes a waiting connection as the request arrives: the upgrade is sent again, once, on a fresh one', async () => {
    // The first two connections (the warm ones) close when the request reaches them, as an upstream's idle
    // timer firing at that moment would.
    const up = await upstreamWith({ behaviour: (i) => (i < 2 ? 'close-on-request' : 'serve') });
    const gw = await gatewayFor(up);
    await until('two warm connections', () => up.open() === 2);
    await roundTrip(gw.wsUrl);
    assert.equal(up.seen.filter((s) => s.upgrades === 1).length, 1);
    assert.equal(await gw.metric('wsvia_gateway_upgrades_refused_total{reason="upstream_unavailable"}'), 0);
  });

  it('an upstream that closes idle connections quickly: no client fails, and it is not redialed in a loop', async () => {
    const up = await upstreamWith({ idleCloseMs: 100 });
    const gw = await gatewayFor(up);
    const started = Date.now();
    for (let i = 0; i < 8; i++) {
      await roundTrip(gw.wsUrl);
      await until(`pause ${i}`, () => Date.now() - started > (i + 1) * 150);
    }
    assert.equal(await gw.metric('wsvia_gateway_upgrades_refused_total{reason="upstream_unavailable"}'), 0);
    // Each warm connection that lives 100 ms counts against the upstream: the refill backs off (250 ms, 500 ms,
    // ...), and each upgrade's refill dials at most two; a loop would have dialed thousands.
    const elapsed = (Date.now() - started) / 1000;
    assert.ok(up.seen.length <= 8 * 3 + 6, `${up.seen.length} connections in ${elapsed} s`);
  });

  it('an upstream that closes every connection at once is dialed a few times with backoff, not in a loop', async () => {
    const up = await upstreamWith({ behaviour: () => 'close-at-once' });
    await gatewayFor(up);
    const started = Date.now();
    await until('1.5 s', () => Date.now() - started > 1500);
    // 2 at once, 2 after 250 ms, 2 after 1 s more: 6; a loop would be hundreds.
    assert.ok(up.seen.length <= 8, `${up.seen.length} connections in 1.5 s`);
  });

  it('a stopped upstream is marked dead and not pre-dialed; the health check finds it back and the pool refills', async () => {
    const first = await startCountingUpstream();
    const port = first.port;
    const gw = await gatewayFor(first, 'health-interval: 0.2');
    await until('two warm connections', () => first.open() === 2);
    await first.close();
    const failures = `wsvia_gateway_upstream_failures_total{code="CONNECTION_REFUSED",upstream="ws://127.0.0.1:${port}"}`;
    await until('the failed redial marks it dead', async () => (await gw.metric(failures)) >= 1);
    const since = Date.now();
    // Ten health intervals: only the health check connects (it counts no failure); the pool dials nothing more
    // than the (at most two) redials that found it stopped.
    await until('2 s', () => Date.now() - since > 2000);
    assert.ok((await gw.metric(failures)) <= 2, 'no warm dial while it is dead');
    const back = await startCountingUpstream({ port });
    cleanups.push(() => back.close());
    await until('the pool refills once it is back', () => back.open() >= 2);
    await roundTrip(gw.wsUrl);
  });

  it('close and drain leave no socket: the upstream sees every warm connection closed', async () => {
    for (const end of ['close', 'drain'] as const) {
      const up = await upstreamWith();
      const gw = await startGateway(gatewayYaml(up.url, 'drain-timeout: 1'));
      await until('two warm connections', () => up.open() === 2);
      if (end === 'close') await gw.gateway.close();
      else await gw.gateway.drain();
      await until(`all closed after ${end}`, () => up.open() === 0);
      assert.equal(up.seen.length, 2, `nothing redialed after ${end}`);
    }
  });

  it('a reload resizes the pool: warm 0 closes the waiting ones, warm 3 dials three', async () => {
    const up = await upstreamWith();
    const gw = await gatewayFor(up);
    await until('two warm connections', () => up.open() === 2);
    gw.gateway.reload(configFromYaml(gatewayYaml(up.url, 'warm: 0')));
    await until('none waiting after warm: 0', () => up.open() === 0);
    gw.gateway.reload(configFromYaml(gatewayYaml(up.url, 'warm: 3')));
    await until('three waiting after warm: 3', () => up.open() === 3);
    assert.equal(up.seen.length, 5);
  });

  it('sizes: the largest warm of the routes naming an upstream, the route over the top level; none for TLS', () => {
    const c = configFromYaml(`
listen: 127.0.0.1:0
warm: 3
routes:
  - { path: /a, upstream: ws://127.0.0.1:1 }
  - { path: /b, upstream: [ws://127.0.0.1:1, ws://127.0.0.1:2], warm: 5 }
  - { path: /c, upstream: ws://127.0.0.1:3, warm: 0 }
  - { path: /d, upstream: wss://127.0.0.1:4 }
`);
    const sizes = Object.fromEntries([...warmTargets(c)].map(([url, t]) => [url, t.size]));
    assert.deepEqual(sizes, { 'ws://127.0.0.1:1': 5, 'ws://127.0.0.1:2': 5, 'ws://127.0.0.1:3': 0 });
  });
});

describe('wsvia gateway --warm (the command)', () => {
  let up: CountingUpstream;
  let server: RunningServer | undefined;
  after(async () => {
    await server?.stop();
    await up.close();
  });

  it('--warm 0 dials on demand: one connection, made after the client came', async () => {
    up = await startCountingUpstream();
    server = await startServerCli('gateway', [
      '--listen',
      '127.0.0.1:0',
      '--warm',
      '0',
      '--route',
      `/=${up.url}`,
    ]);
    const client = await roundTrip(server.url.replace('http:', 'ws:'));
    assert.equal(up.seen.length, 1);
    assert.ok((up.seen[0] as Seen).at >= client);
    await server.stop();
    server = undefined;
  });

  it('by default two are dialed at start', async () => {
    server = await startServerCli('gateway', ['--listen', '127.0.0.1:0', '--route', `/=${up.url}`]);
    const before = up.seen.length;
    await until('two warm connections', () => up.seen.length - before === 2 && up.open() === 2);
    await server.stop();
    server = undefined;
    await until('closed when the gateway stops', () => up.open() === 0);
  });
});
