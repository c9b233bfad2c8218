/**
 * Network fuzzing of `wsvia proxy` in process: its plain listener, its TLS listener, its PROXY-protocol listener
 * and its admin endpoint get fuzzed request heads, PROXY headers, ClientHello garbage and raw bytes, split and
 * delayed, half-closed or reset. Afterwards the proxy still tunnels, holds no slot and no socket, and nothing
 * reached the process.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { AdminListener } from '../../src/serve/admin.js';
import { localhostCert } from '../helpers/certs.js';
import { startProxy, startTcpEcho, type RunningWsviaProxy, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { fuzz, no500, RunChecks, statusOf, type Judge } from './harness.js';
import { clientHelloGarbage, proxyHeader, rawBytes, requestHead } from './inputs.js';
import { captureClientHello, loopbackLookup, startHttpSink, type Sink } from './peers.js';

/** The proxy's own faults are 500; 502/504 are for a destination that failed, never for a client's bytes. */
const proxyJudge: Judge = (input, o) => {
  const bad = no500(input, o);
  if (bad !== undefined) return bad;
  const s = statusOf(o.received);
  if (s !== undefined && s >= 500 && s !== 502 && s !== 504) return `answered ${s}`;
  return undefined;
};

/** A CONNECT through the proxy to the echo peer carries bytes both ways (`prefix`: a PROXY header first). */
async function tunnelWorks(
  port: number,
  echoPort: number,
  o: { tls?: boolean; prefix?: string } = {},
): Promise<void> {
  const raw = net.connect({ host: '127.0.0.1', port });
  if (o.prefix !== undefined) raw.write(o.prefix);
  const s = o.tls ? tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' }) : raw;
  s.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\nping`);
  let got = '';
  s.on('data', (b: Buffer) => (got += b.toString('latin1')));
  await Promise.race([
    new Promise<void>((r) => s.on('data', () => got.endsWith('ping') && r())),
    once(s, 'close').then(() => assert.fail(`closed: ${got}`)),
  ]);
  assert.match(got, /^HTTP\/1\.1 200 /);
  s.destroy();
  raw.destroy();
}

describe('fuzz: wsvia proxy listeners', () => {
  let echo: TcpPeer;
  let http: Sink;
  let hello: Buffer;
  let targets: string[];
  before(async () => {
    echo = await startTcpEcho();
    http = await startHttpSink();
    hello = await captureClientHello();
    targets = [
      `127.0.0.1:${echo.port}`,
      `localhost:${echo.port}`,
      `http://127.0.0.1:${http.port}/x`,
      `http://localhost:${http.port}/`,
      `ws://127.0.0.1:${http.port}/ws`,
      '127.0.0.1:1',
      '10.0.0.1:443',
      'nowhere.invalid:443',
      `http://[::1]:${http.port}/`,
    ];
  });
  after(async () => {
    await echo.close();
    await http.close();
  });

  async function withProxy(
    options: Parameters<typeof startProxy>[0],
    body: (p: RunningWsviaProxy) => Promise<number>,
  ): Promise<void> {
    const checks = new RunChecks();
    const proxy = await startProxy({ lookup: loopbackLookup, ...options });
    try {
      const n = await body(proxy);
      await checks.verify([{ name: 'tunnels', open: () => proxy.server.active }]);
      assert.ok(n >= 100, `only ${n} connections`);
    } finally {
      await proxy.close();
    }
  }

  it('plain listener: fuzzed heads and raw bytes leave it serving, with no slot or socket held', async () => {
    await withProxy({}, async (proxy) => {
      const ep = { port: proxy.port };
      let n = await fuzz({ endpoint: ep, input: requestHead(targets), runs: 60, judge: proxyJudge });
      n += await fuzz({ endpoint: ep, input: rawBytes, runs: 10, judge: proxyJudge });
      await tunnelWorks(proxy.port, echo.port);
      return n;
    });
  });

  // Every timeout short, so whatever a fuzzed connection leaves (a CONNECT to a black hole, a head never finished,
  // a tunnel whose client's reset Node lost under its own TLS write: a clean end, then writes that never flush)
  // ends well inside the settle time, on a loaded machine too. What is proven: nothing is held past the limits.
  it('TLS listener: heads inside TLS, and ClientHello garbage outside it', async () => {
    const limits = { headerTimeout: 2_000, connectTimeout: 2_000, idleTimeout: 5_000 };
    await withProxy({ tls: localhostCert(), limits }, async (proxy) => {
      let n = await fuzz({
        endpoint: { port: proxy.port, tls: true },
        input: requestHead(targets),
        runs: 12,
      });
      n += await fuzz({ endpoint: { port: proxy.port }, input: clientHelloGarbage(hello), runs: 12 });
      await tunnelWorks(proxy.port, echo.port, { tls: true });
      return n;
    });
  });

  it('PROXY-protocol listener: fuzzed v1/v2 headers, then heads', async () => {
    await withProxy({ proxyProtocol: true }, async (proxy) => {
      const input = fc
        .tuple(proxyHeader, fc.option(requestHead(targets)))
        .map(([h, r]) => Buffer.concat([h, r ?? Buffer.alloc(0)]));
      const n = await fuzz({ endpoint: { port: proxy.port }, input, runs: 15, judge: proxyJudge });
      await tunnelWorks(proxy.port, echo.port, { prefix: 'PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n' });
      return n;
    });
  });

  it('admin endpoint: fuzzed heads get no 500 and the listener keeps answering', async () => {
    const proxy = await startProxy({ lookup: loopbackLookup });
    const admin = new AdminListener({ registry: proxy.server.metrics.registry, healthy: () => true });
    const checks = new RunChecks();
    try {
      const url = await admin.listen('127.0.0.1', 0);
      const port = Number(new URL(url).port);
      const heads = requestHead([
        '/metrics',
        '/healthz',
        '/',
        '/metrics?x=1',
        '*',
        'http://127.0.0.1/metrics',
      ]);
      await fuzz({ endpoint: { port }, input: fc.oneof(heads, rawBytes), runs: 10, judge: no500 });
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /# TYPE /);
      await checks.verify([]);
    } finally {
      await admin.close();
      await proxy.close();
    }
  });
});
