/**
 * Admission limits (src/serve/admission.ts): one class counts for every server, on by default, and a slot comes
 * back exactly once whichever path ends the connection.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startBridge } from '../../src/bridge/server.js';
import { Admission, AdmissionRefusal, AdmissionSlot, DEFAULT_ADMISSION } from '../../src/serve/admission.js';
import { until } from '../helpers/eventually.js';
import { startProxy, startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { makeSelfSigned } from '../../src/echo/self-signed.js';
import {
  closed,
  openWs as openGatewayWs,
  rawExchange,
  startGateway,
  startUpstream,
  type Upstream,
} from '../gateway/peers.js';

const PER_CLIENT = DEFAULT_ADMISSION.maxPerClient;

describe('Admission', () => {
  it('refuses the (max-per-client + 1)-th slot of one client with 429 and the (max + 1)-th of all with 503', () => {
    const a = new Admission({ maxConnections: 3, maxPerClient: 2 });
    const s1 = a.admit('10.0.0.1');
    const s2 = a.admit('10.0.0.1');
    const over = a.admit('10.0.0.1');
    assert.ok(over instanceof AdmissionRefusal);
    assert.equal(over.status, 429);
    assert.equal(over.reason, 'per_client');
    assert.deepEqual(over.headers, [['Retry-After', '1']]);
    assert.ok(a.admit('10.0.0.2') instanceof AdmissionSlot);
    const full = a.admit('10.0.0.3');
    assert.ok(full instanceof AdmissionRefusal);
    assert.equal(full.status, 503);
    assert.match(
      full.describe({ maxConnections: '--max-connections', maxPerClient: '-' }),
      /--max-connections 3/,
    );
    assert.equal(a.open, 3);
    assert.ok(s1 instanceof AdmissionSlot && s2 instanceof AdmissionSlot);
    s1.close();
    s1.close();
    assert.equal(a.open, 2, 'a slot closed twice is given back once');
    assert.equal(a.openFor('10.0.0.1'), 1);
  });

  it('treats 0 as no limit and tells every change', () => {
    const seen: number[] = [];
    const a = new Admission({ maxConnections: 0, maxPerClient: 0 }, (n) => seen.push(n));
    const slots = Array.from({ length: 5 }, () => a.admit('x'));
    for (const s of slots) if (s instanceof AdmissionSlot) s.close();
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 4, 3, 2, 1, 0]);
  });
});

function openWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`${res.statusCode}`), { status: res.statusCode, headers: res.headers })),
    );
    ws.once('error', reject);
  });
}

async function openMany<T>(n: number, open: () => Promise<T>): Promise<T[]> {
  const all: T[] = [];
  for (let i = 0; i < n; i += 50)
    all.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, open))));
  return all;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

describe('admission limits on by default', () => {
  let echo: TcpPeer;
  let upstream: Upstream;
  before(async () => {
    echo = await startTcpEcho();
    upstream = await startUpstream('u');
  });
  after(async () => {
    await echo.close();
    await upstream.close();
  });

  it(`bridge: the ${PER_CLIENT + 1}th session from one address gets 429 with Retry-After; slots come back after close and after refusals`, async () => {
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port } });
    try {
      const open = await openMany(PER_CLIENT, () => openWs(b.url));
      const refused = await openWs(b.url).then(
        () => assert.fail('accepted over the limit'),
        (e: { status: number; headers: Record<string, string> }) => e,
      );
      assert.equal(refused.status, 429);
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(b.metrics.refused.get({ reason: 'client-limit' }), 1);
      for (const ws of open) ws.close();
      await until('every slot back', () => b.admitted === 0 && b.active === 0);
      // Failure paths: a malformed handshake (400) and a target that refuses (502) give their slot back too.
      assert.match(
        await rawExchange(b.port, 'GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
        /^HTTP\/1\.1 400/,
      );
      const dead = await startBridge({ port: 0, target: { host: '127.0.0.1', port: 1 } });
      await openWs(dead.url).then(
        () => assert.fail('accepted'),
        (e: { status: number }) => assert.equal(e.status, 502),
      );
      await until('slots back after failures', () => b.admitted === 0 && dead.admitted === 0);
      await dead.close();
      (await openWs(b.url)).close();
    } finally {
      await b.close();
    }
  });

  it(`gateway: the ${PER_CLIENT + 1}th connection from one address gets 429 with Retry-After; the count returns to 0`, async () => {
    const g = await startGateway(
      `listen: 127.0.0.1:0\nroutes:\n  - { path: /, upstream: [ws://127.0.0.1:${upstream.port}] }\n`,
    );
    const port = Number(new URL(g.url).port);
    try {
      const sockets = await openMany(PER_CLIENT, () => connect(port));
      await until('every connection counted', () => g.gateway.connections === PER_CLIENT);
      const answer = await rawExchange(port, '');
      assert.match(answer, /^HTTP\/1\.1 429/);
      assert.match(answer, /\r\nRetry-After: 1\r\n/i);
      assert.equal(g.gateway.metrics.refused.get({ reason: 'per_client' }), 1);
      for (const s of sockets) s.destroy();
      await until('every slot back', () => g.gateway.connections === 0);
      // Failure paths: a request that does not parse, and one that is answered and closed.
      assert.match(await rawExchange(port, 'zz\r\n\r\n'), /^HTTP\/1\.1 400/);
      assert.match(
        await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        /^HTTP\/1\.1 200/,
      );
      await until('slots back after failures', () => g.gateway.connections === 0);
    } finally {
      await g.gateway.close();
    }
  });

  it('proxy: requests whose chunked body does not parse give their slots back (a slot ends with its connection)', async () => {
    const p = await startProxy({ limits: { maxTunnelsPerClient: 2 } });
    try {
      const request = `POST http://127.0.0.1:${echo.port}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`;
      for (let i = 0; i < 5; i++) await rawExchange(p.port, request);
      await until('every slot back', () => p.server.active === 0);
      assert.equal(p.server.metrics.denials.get({ reason: 'limit' }), 0, 'never refused for the limit');
    } finally {
      await p.close();
    }
  });

  it('gateway: SNI passthrough counts against --max-per-client; over it the TLS connection is closed, and the slot comes back', async () => {
    const cert = makeSelfSigned('only.test', ['DNS:only.test']);
    const backend = await startUpstream('only', { tls: cert });
    const g = await startGateway(
      `tls-listen: 127.0.0.1:0\nsni: [{ name: only.test, backend: 127.0.0.1:${backend.port} }]\nmax-per-client: 1\n`,
    );
    const url = `wss://127.0.0.1:${g.tlsPort}/`;
    const options = { ca: cert.cert, servername: 'only.test' };
    try {
      const first = await openGatewayWs(url, options);
      await assert.rejects(openGatewayWs(url, options));
      assert.equal(g.gateway.metrics.refused.get({ reason: 'per_client' }), 1);
      first.ws.close();
      await closed(first.ws);
      await until('the slot back', () => g.gateway.connections === 0);
      const again = await openGatewayWs(url, options);
      again.ws.close();
      await closed(again.ws);
    } finally {
      await g.gateway.close();
      await backend.close();
    }
  });
});
