import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { resolveRoutes, toDialTarget } from '../../src/dial/dial.js';
import { clearPacCache } from '../../src/dial/pac-source.js';
import { clearWpadCache, discoverWpad } from '../../src/dial/wpad.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { tempDir } from '../helpers/process.js';
import { startTinyproxy } from '../helpers/tinyproxy.js';
import type { RunningPeer } from '../helpers/process.js';
import { echoOnce } from '../helpers/ws.js';

/** What listens on TCP port 80, for the failure message (ss names the process). */
function holderOfPort80(): string {
  const r = spawnSync('ss', ['-H', '-ltnp', 'sport = :80'], { encoding: 'utf8' });
  return (r.stdout || r.stderr || String(r.error)).trim() || 'nothing ss can see';
}

/** WPAD's URL has no port: the PAC server must be on 127.0.0.1:80 (this machine's tests run as root). */
async function listenOn80(server: http.Server): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(80, '127.0.0.1', () => resolve());
    });
  } catch (e) {
    assert.fail(
      `the WPAD test needs 127.0.0.1:80 (a WPAD URL has no port) and cannot have it: ${(e as Error).message}; held by: ${holderOfPort80()}`,
    );
  }
}

describe('WPAD by DNS against a real DNS server, PAC server and proxy on loopback', () => {
  let dnsServer: TestDnsServer;
  let pacServer: http.Server;
  let echo: EchoServer;
  let tiny: RunningPeer;
  let dir: string;
  let resolvConf: string;
  const requests: { host: string; url: string }[] = [];

  before(async () => {
    echo = await startEchoServer();
    tiny = await startTinyproxy();
    // wpad.a.b.corp.test is absent (NXDOMAIN); wpad.b.corp.test serves the PAC; wpad.c.corp.test resolves but
    // serves nothing (404).
    dnsServer = await startDnsServer({
      'wpad.b.corp.test': '127.0.0.1',
      'wpad.c.corp.test': '127.0.0.1',
    });
    pacServer = http.createServer((req, res) => {
      requests.push({ host: req.headers.host ?? '', url: req.url ?? '' });
      if (req.headers.host === 'wpad.b.corp.test' && req.url === '/wpad.dat') {
        res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig' });
        return void res.end(
          `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${tiny.port}; DIRECT"; }`,
        );
      }
      res.writeHead(404).end('no WPAD here');
    });
    await listenOn80(pacServer);
    dir = tempDir('wsvia-wpad-');
    resolvConf = path.join(dir, 'resolv.conf');
    fs.writeFileSync(resolvConf, `nameserver 127.0.0.1\nsearch a.b.corp.test\n`);
  });
  after(async () => {
    clearWpadCache();
    clearPacCache();
    await Promise.all([tiny?.stop(), echo?.close(), dnsServer?.close()]);
    await new Promise<void>((r) => (pacServer?.listening ? pacServer.close(() => r()) : r()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    clearWpadCache();
    dnsServer.asked.length = 0;
    requests.length = 0;
  });

  it('first candidate NXDOMAIN, the second serves a PAC: the WebSocket goes through its proxy', async () => {
    const wpad = { resolvConf, resolver: dnsServer.resolver() };
    const routes = await resolveRoutes(toDialTarget(`ws://127.0.0.1:${echo.port}/`), { wpad });
    assert.equal(routes[0]?.source, 'wpad');
    assert.equal(routes[0]?.proxy?.port, tiny.port);
    assert.match(
      routes[0]?.reason ?? '',
      new RegExp(
        `^proxy http://127\\.0\\.0\\.1:${tiny.port}: WPAD: http://wpad\\.b\\.corp\\.test/wpad\\.dat \\(from the search domain a\\.b\\.corp\\.test in ${resolvConf.replace(/[.]/g, '\\.')}\\); tried first: http://wpad\\.a\\.b\\.corp\\.test/wpad\\.dat \\(DNS: no such name \\(NXDOMAIN\\)\\)`,
      ),
    );
    assert.equal(routes[1]?.proxy, null);
    // The names were looked up in order, over the wire, and the PAC was asked for with its own Host.
    assert.deepEqual(dnsServer.asked.slice(0, 2), ['wpad.a.b.corp.test', 'wpad.b.corp.test']);
    assert.ok(requests.some((r) => r.host === 'wpad.b.corp.test' && r.url === '/wpad.dat'));

    const ws = await connect(`ws://127.0.0.1:${echo.port}/`, { wpad });
    try {
      assert.equal(await echoOnce(ws, 'through WPAD'), 'through WPAD');
    } finally {
      ws.close();
    }
    assert.match(tiny.log(), new RegExp(`CONNECT.*127\\.0\\.0\\.1:${echo.port}`));
  });

  it('wsvia doctor follows WPAD too: the route step names the PAC found and the proxy carries the path', async () => {
    const wpad = { resolvConf, resolver: dnsServer.resolver() };
    const connects = () =>
      tiny
        .log()
        .split('\n')
        .filter((l) => l.includes(`127.0.0.1:${echo.port}`)).length;
    const before = connects();
    const r = await runDoctor(`ws://127.0.0.1:${echo.port}/`, { wpad, env: {} });
    assert.equal(r.ok, true, r.summary);
    const step = r.steps.find((s) => s.step === 'route');
    assert.match(step?.detail ?? '', /WPAD: http:\/\/wpad\.b\.corp\.test\/wpad\.dat/);
    assert.match(step?.detail ?? '', /entry 1 of 2, PROXY 127\.0\.0\.1:\d+/);
    assert.ok(connects() > before, 'the doctor went through tinyproxy');
  });

  it('the discovered URL is remembered: a second discovery asks DNS nothing', async () => {
    const wpad = { resolvConf, resolver: dnsServer.resolver() };
    const first = await discoverWpad(wpad);
    assert.equal(first.found?.candidate.url, 'http://wpad.b.corp.test/wpad.dat');
    const asked = dnsServer.asked.length;
    const second = await discoverWpad(wpad);
    assert.equal(second.found?.candidate.url, 'http://wpad.b.corp.test/wpad.dat');
    assert.equal(dnsServer.asked.length, asked);
    // Past cacheMs, discovery runs again.
    let now = Date.now();
    const timed = { ...wpad, cacheMs: 1000, now: () => now };
    clearWpadCache();
    await discoverWpad(timed);
    const before2 = dnsServer.asked.length;
    now += 2000;
    await discoverWpad(timed);
    assert.ok(dnsServer.asked.length > before2);
  });

  it('dials that start together share one discovery: each name is asked once', async () => {
    const wpad = { resolvConf, resolver: dnsServer.resolver() };
    const all = await Promise.all([discoverWpad(wpad), discoverWpad(wpad), discoverWpad(wpad)]);
    for (const d of all) assert.equal(d.found?.candidate.url, 'http://wpad.b.corp.test/wpad.dat');
    assert.deepEqual(dnsServer.asked, ['wpad.a.b.corp.test', 'wpad.b.corp.test']);
  });

  it('a name that resolves but serves no PAC is skipped with the HTTP answer as the reason', async () => {
    const d = await discoverWpad({ domains: ['x.c.corp.test'], resolver: dnsServer.resolver() });
    assert.equal(d.found, undefined);
    assert.deepEqual(
      d.attempts.map((a) => a.url),
      [
        'http://wpad.x.c.corp.test/wpad.dat',
        'http://wpad.c.corp.test/wpad.dat',
        'http://wpad.corp.test/wpad.dat',
      ],
    );
    assert.match(d.attempts[1]?.why ?? '', /wpad\.c\.corp\.test is 127\.0\.0\.1, but .*404/);
  });

  it('no WPAD anywhere: direct, the reason naming every candidate and why it failed', async () => {
    const conf = path.join(dir, 'nowhere.conf');
    fs.writeFileSync(conf, 'domain x.y.nowhere.test\n');
    const wpad = { resolvConf: conf, resolver: dnsServer.resolver() };
    const routes = await resolveRoutes(toDialTarget(`ws://127.0.0.1:${echo.port}/`), { wpad });
    assert.equal(routes.length, 1);
    assert.equal(routes[0]?.proxy, null);
    assert.equal(routes[0]?.source, 'wpad');
    const reason = routes[0]?.reason ?? '';
    assert.match(
      reason,
      /^direct: no WPAD found from the domain line of .*nowhere\.conf \(x\.y\.nowhere\.test\)/,
    );
    for (const name of ['wpad.x.y.nowhere.test', 'wpad.y.nowhere.test', 'wpad.nowhere.test']) {
      assert.ok(reason.includes(`http://${name}/wpad.dat: DNS: no such name (NXDOMAIN)`), reason);
    }
    assert.deepEqual(dnsServer.asked, ['wpad.x.y.nowhere.test', 'wpad.y.nowhere.test', 'wpad.nowhere.test']);
    const ws = await connect(`ws://127.0.0.1:${echo.port}/`, { wpad });
    try {
      assert.equal(await echoOnce(ws, 'direct'), 'direct');
    } finally {
      ws.close();
    }
  });

  it('never a single-label candidate: search test corp.test asks for wpad.corp.test only', async () => {
    const conf = path.join(dir, 'short.conf');
    fs.writeFileSync(conf, 'search test corp.test co.uk\n');
    const d = await discoverWpad({ resolvConf: conf, resolver: dnsServer.resolver() });
    assert.deepEqual(dnsServer.asked, ['wpad.corp.test']);
    assert.deepEqual(
      d.attempts.map((a) => a.url),
      ['http://wpad.corp.test/wpad.dat'],
    );
    const none = await discoverWpad({ domains: ['test', 'com'], resolver: dnsServer.resolver() });
    assert.equal(none.attempts.length, 0);
    assert.deepEqual(dnsServer.asked, ['wpad.corp.test']);
  });

  it('without search or domain, the host name gives the domain; an unreadable resolv.conf says so', async () => {
    const conf = path.join(dir, 'bare.conf');
    fs.writeFileSync(conf, 'nameserver 127.0.0.1\n');
    const d = await discoverWpad({
      resolvConf: conf,
      hostname: 'pc1.b.corp.test',
      resolver: dnsServer.resolver(),
    });
    assert.equal(d.found?.candidate.url, 'http://wpad.b.corp.test/wpad.dat');
    assert.match(
      d.found?.reason ?? '',
      /from the search domain b\.corp\.test of the host name pc1\.b\.corp\.test/,
    );
    const missing = path.join(dir, 'missing.conf');
    const m = await discoverWpad({ resolvConf: missing, hostname: 'pc1', resolver: dnsServer.resolver() });
    assert.equal(m.found, undefined);
    assert.match(
      m.domainsFrom,
      /cannot read .*missing\.conf \(ENOENT\), and the host name 'pc1' has no domain/,
    );
  });
});
