import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { BadProxyList } from '../../src/dial/bad-proxies.js';
import { dialDetailed, resolveRoutes } from '../../src/dial/dial.js';
import { clearPacCache, freshnessSeconds } from '../../src/dial/pac-source.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { formatTraceEvent } from '../../src/observe/format-trace.js';
import type { TraceRecord } from '../../src/observe/trace.js';
import { freePort, tempDir, type RunningProxy } from '../helpers/process.js';
import { startMicrosocks } from '../helpers/socks-peers.js';
import { startTinyproxy } from '../helpers/tinyproxy.js';
import { wsviaRejection } from '../helpers/wsvia-rejection.js';
import { echoOnce } from '../helpers/ws.js';

function pacReturning(result: string): string {
  return `function FindProxyForURL(url, host) { return ${JSON.stringify(result)}; }`;
}

describe('PAC routes with failover, against real proxies', () => {
  let echo: EchoServer;
  let tiny: RunningProxy;
  let socks: RunningProxy;
  let dead1: number;
  let dead2: number;
  let dir: string;
  let pacServer: http.Server;
  let pacPort: number;
  const served = new Map<string, { body: string; headers: Record<string, string> }>();
  const fetches = new Map<string, number>();

  before(async () => {
    echo = await startEchoServer();
    [tiny, socks] = await Promise.all([startTinyproxy(), startMicrosocks()]);
    dead1 = await freePort();
    dead2 = await freePort();
    dir = tempDir('wsvia-pac-');
    pacServer = http.createServer((req, res) => {
      const file = served.get(req.url ?? '');
      fetches.set(req.url ?? '', (fetches.get(req.url ?? '') ?? 0) + 1);
      if (!file) return void res.writeHead(404).end('no such PAC');
      res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig', ...file.headers });
      res.end(file.body);
    });
    await new Promise<void>((r) => pacServer.listen(0, '127.0.0.1', r));
    pacPort = (pacServer.address() as AddressInfo).port;
  });
  after(async () => {
    clearPacCache();
    await Promise.all([tiny?.stop(), socks?.stop(), echo?.close()]);
    pacServer?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('first proxy dead, second alive: the second carries it, and the dead one is tried last next time', async () => {
    const pac = path.join(dir, 'failover.pac');
    fs.writeFileSync(pac, pacReturning(`PROXY 127.0.0.1:${dead1}; PROXY 127.0.0.1:${tiny.port}; DIRECT`));
    const badProxies = new BadProxyList();
    const events: TraceRecord[] = [];
    const ws = await connect(echo.url, { pac, badProxies, trace: (e) => events.push(e) });
    assert.equal(await echoOnce(ws, 'failover'), 'failover');
    ws.close();
    const text = events.map(formatTraceEvent).join('\n');
    assert.match(
      text,
      new RegExp(
        `route: proxy http://127\\.0\\.0\\.1:${dead1}: PAC .*failover\\.pac returned ".*": entry 1 of 3, PROXY 127\\.0\\.0\\.1:${dead1} \\(route 1 of 3\\)`,
      ),
    );
    assert.match(text, /route 1 of 3 failed \(PROXY_CONNECT_FAILED\)/);
    assert.match(text, new RegExp(`entry 2 of 3, PROXY 127\\.0\\.0\\.1:${tiny.port} \\(route 2 of 3\\)`));
    assert.match(tiny.log(), new RegExp(`CONNECT.*127\\.0\\.0\\.1:${echo.port}`));
    assert.ok(badProxies.get(`http://127.0.0.1:${dead1}`));

    const again: TraceRecord[] = [];
    const ws2 = await connect(echo.url, { pac, badProxies, trace: (e) => again.push(e) });
    ws2.close();
    const first = again.find((e) => e.type === 'route');
    assert.match(
      first?.type === 'route' ? first.text : '',
      new RegExp(`PROXY 127\\.0\\.0\\.1:${tiny.port} \\(route 1 of 3\\)`),
    );
    assert.ok(
      !again.some((e) => e.type === 'note' && e.text.includes('failed')),
      'the dead proxy was not tried first',
    );
  });

  it('a SOCKS5 entry is dialled with the name sent to the proxy', async () => {
    const pac = path.join(dir, 'socks.pac');
    fs.writeFileSync(pac, pacReturning(`SOCKS5 127.0.0.1:${socks.port}`));
    const routes = await resolveRoutes({ host: 'localhost', port: echo.port, tls: false }, { pac });
    assert.equal(routes[0]?.proxy?.display, `socks5h://127.0.0.1:${socks.port}`);
    const ws = await connect(`ws://localhost:${echo.port}/`, { pac });
    assert.equal(await echoOnce(ws, 'pac socks'), 'pac socks');
    ws.close();
  });

  it('every route failing is one error listing every attempt', async () => {
    const pac = path.join(dir, 'dead.pac');
    fs.writeFileSync(pac, pacReturning(`PROXY 127.0.0.1:${dead1}; SOCKS5 127.0.0.1:${dead2}`));
    const e = await wsviaRejection(dialDetailed(echo.url, { pac, badProxies: new BadProxyList() }));
    assert.equal(e.code, 'PROXY_CONNECT_FAILED');
    assert.match(
      e.message,
      new RegExp(
        `every route to 127\\.0\\.0\\.1:${echo.port} failed: 1\\) http://127\\.0\\.0\\.1:${dead1}: .*; 2\\) socks5h://127\\.0\\.0\\.1:${dead2}: .*\\[PROXY_CONNECT_FAILED\\]`,
      ),
    );
    assert.equal((e.details?.attempts as unknown[]).length, 2);
  });

  it('a PAC that throws, loops or returns garbage is a clear CONFIG_INVALID', async () => {
    const cases = [
      [
        'throws.pac',
        'function FindProxyForURL() { throw new Error("policy missing"); }',
        /Error: policy missing/,
      ],
      [
        'loops.pac',
        'function FindProxyForURL() { for (;;) {} }',
        /did not finish for http:\/\/127\.0\.0\.1:\d+\/ within \d+ ms/,
      ],
      ['garbage.pac', pacReturning('PRXY oops'), /returned "PRXY oops", which holds no usable entry/],
    ] as const;
    for (const [name, body, pattern] of cases) {
      const pac = path.join(dir, name);
      fs.writeFileSync(pac, body);
      const e = await wsviaRejection(dialDetailed(echo.url, { pac }));
      assert.equal(e.code, 'CONFIG_INVALID', e.message);
      assert.equal(e.hop, 'route');
      assert.match(e.message, pattern);
    }
  });

  it('a PAC fetched over http is cached as its Cache-Control says', async () => {
    served.set('/cached.pac', {
      body: pacReturning(`PROXY 127.0.0.1:${tiny.port}`),
      headers: { 'cache-control': 'max-age=300' },
    });
    served.set('/nostore.pac', {
      body: pacReturning(`PROXY 127.0.0.1:${tiny.port}`),
      headers: { 'cache-control': 'no-store' },
    });
    const target = { host: '127.0.0.1', port: echo.port, tls: false };
    for (let i = 0; i < 3; i++) {
      await resolveRoutes(target, { pac: `http://127.0.0.1:${pacPort}/cached.pac` });
      await resolveRoutes(target, { pac: `http://127.0.0.1:${pacPort}/nostore.pac` });
    }
    assert.equal(fetches.get('/cached.pac'), 1);
    served.set('/together.pac', {
      body: pacReturning('DIRECT'),
      headers: { 'cache-control': 'max-age=300' },
    });
    await Promise.all(
      Array.from({ length: 5 }, () =>
        resolveRoutes(target, { pac: `http://127.0.0.1:${pacPort}/together.pac` }),
      ),
    );
    assert.equal(fetches.get('/together.pac'), 1, 'dials that start together share one fetch');
    assert.equal(fetches.get('/nostore.pac'), 3);
    const e = await wsviaRejection(resolveRoutes(target, { pac: `http://127.0.0.1:${pacPort}/missing.pac` }));
    assert.match(e.message, /cannot fetch the PAC file .*missing\.pac: the server answered 404/);
  });

  it('--noproxy still goes direct before the PAC is asked', async () => {
    const routes = await resolveRoutes(
      { host: '127.0.0.1', port: echo.port, tls: false },
      { pac: path.join(dir, 'never-read.pac'), noProxy: '127.0.0.1' },
    );
    assert.equal(routes.length, 1);
    assert.equal(routes[0]?.proxy, null);
    assert.match(routes[0]?.reason ?? '', /--noproxy entry '127\.0\.0\.1'/);
  });
});

describe('freshnessSeconds (RFC 9111 §4.2.1)', () => {
  it('reads max-age, no-store, no-cache and Expires', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(freshnessSeconds({ 'cache-control': 'public, max-age=120' }, now), 120);
    assert.equal(freshnessSeconds({ 'cache-control': 'no-cache, max-age=120' }, now), 0);
    assert.equal(freshnessSeconds({ 'cache-control': 'no-store' }, now), 0);
    assert.equal(
      freshnessSeconds(
        { expires: 'Thu, 01 Jan 2026 00:10:00 GMT', date: 'Thu, 01 Jan 2026 00:00:00 GMT' },
        now,
      ),
      600,
    );
    assert.equal(freshnessSeconds({ expires: 'garbage' }, now), 0);
    assert.equal(freshnessSeconds({}, now), 0);
  });
});
