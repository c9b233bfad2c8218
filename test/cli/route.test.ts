import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { freePort, tempDir, type RunningProxy } from '../helpers/process.js';
import { startMicrosocks } from '../helpers/socks-peers.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k)));

function wsvia(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    env: { ...CLEAN_ENV, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI without blocking the event loop (the test's own peers must keep serving). */
function wsviaAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: CLEAN_ENV });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('wsvia route', () => {
  let dir: string;
  before(() => {
    dir = tempDir('wsvia-route-cli-');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prints the environment route and why, never the password', () => {
    const r = wsvia(['route', 'wss://echo.example/'], {
      https_proxy: 'http://user:hunter2@proxy.corp:3128',
      no_proxy: '.internal',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1\. http:\/\/user:\*\*\*@proxy\.corp:3128/);
    assert.match(r.stdout, /why: proxy .* from https_proxy; no no_proxy entry matched echo\.example/);
    assert.ok(!r.stdout.includes('hunter2'));
  });

  it('prints a preproxy chain, NO_PROXY matches, and --json', () => {
    let r = wsvia([
      'route',
      'ws://a.example/',
      '--preproxy',
      'socks5h://127.0.0.1:1080',
      '-x',
      'http://p:3128',
    ]);
    assert.match(r.stdout, /socks5h:\/\/127\.0\.0\.1:1080 -> http:\/\/p:3128/);
    r = wsvia(['route', 'ws://db.internal/', '--json'], {
      http_proxy: 'http://p:3128',
      no_proxy: '.internal',
    });
    const out = JSON.parse(r.stdout) as {
      routes: { proxy: string | null; source: string; reason: string }[];
    };
    assert.deepEqual(out.routes[0], {
      hops: [],
      proxy: null,
      source: 'no-proxy',
      reason: "direct: no_proxy entry '.internal' matches db.internal",
    } as never);
  });

  it('lists PAC entries in order with the rule that chose each', () => {
    const pac = path.join(dir, 'corp.pac');
    fs.writeFileSync(
      pac,
      'function FindProxyForURL(u, h) { return dnsDomainIs(h, ".example") ? "PROXY a:3128; SOCKS5 b:1080; DIRECT" : "DIRECT"; }',
    );
    const r = wsvia(['route', 'wss://echo.example/', '--pac', pac]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /tried in this order/);
    assert.match(r.stdout, /1\. http:\/\/a:3128\n\s+why: .*entry 1 of 3, PROXY a:3128/);
    assert.match(r.stdout, /2\. socks5h:\/\/b:1080/);
    assert.match(r.stdout, /3\. direct/);
  });

  it('usage errors and broken PAC files exit 2', () => {
    assert.equal(wsvia(['route']).code, 2);
    assert.equal(wsvia(['route', 'ws://x/', '-x', 'http://p:1', '--socks5-hostname', 'h:1']).code, 2);
    const n = wsvia(['route', 'ws://x/', '--proxy-negotiate', '--proxy-anyauth']);
    assert.equal(n.code, 2);
    assert.match(n.stderr, /--proxy-anyauth allows every scheme/);
    const r = wsvia(['route', 'ws://x/', '--pac', path.join(dir, 'missing.pac')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read the PAC file .*ENOENT \[CONFIG_INVALID, hop route\]/);
  });

  it('--wpad: opt-in, never with --pac/--proxy; a single-label domain gives no candidate and goes direct', () => {
    const both = wsvia(['route', 'ws://x/', '--wpad', '--pac', 'http://wpad.corp/wpad.dat']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--wpad finds the proxy/);
    assert.equal(wsvia(['route', 'ws://x/', '--wpad-domain', 'corp.test', '-x', 'http://p:1']).code, 2);
    const r = wsvia(['route', 'ws://x/', '--wpad-domain', 'example', '--wpad-domain', 'co.uk', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      routes: { proxy: string | null; source: string; reason: string }[];
    };
    assert.equal(out.routes.length, 1);
    assert.equal(out.routes[0]?.proxy, null);
    assert.equal(out.routes[0]?.source, 'wpad');
    assert.match(
      out.routes[0]?.reason ?? '',
      /^direct: no WPAD candidate to try from the search domains given \(example co\.uk\): WPAD stops/,
    );
    assert.match(wsvia(['route', '--help']).stdout, /--wpad /);
  });
});

describe('wsvia connect through SOCKS, with --trace', () => {
  let echo: EchoServer;
  let socks: RunningProxy;
  let dir: string;
  before(async () => {
    echo = await startEchoServer();
    socks = await startMicrosocks();
    dir = tempDir('wsvia-connect-cli-');
  });
  after(async () => {
    await socks?.stop();
    await echo?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--pac with a dead first proxy: the trace shows the failed entry and the one used', async () => {
    const dead = await freePort();
    const pac = path.join(dir, 'failover.pac');
    fs.writeFileSync(
      pac,
      `function FindProxyForURL(u, h) { return "PROXY 127.0.0.1:${dead}; SOCKS5 127.0.0.1:${socks.port}"; }`,
    );
    const r = await wsviaAsync([
      'connect',
      echo.url,
      '--pac',
      pac,
      '--send',
      'pac',
      '--expect',
      '1',
      '--trace',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'pac\n');
    assert.match(
      r.stderr,
      /\* route: proxy http:\/\/127\.0\.0\.1:\d+: PAC .*entry 1 of 2, PROXY 127\.0\.0\.1:\d+ \(route 1 of 2\)/,
    );
    assert.match(r.stderr, /\* route 1 of 2 failed \(PROXY_CONNECT_FAILED\)/);
    assert.match(
      r.stderr,
      /\* route: proxy socks5h:\/\/127\.0\.0\.1:\d+: PAC .*entry 2 of 2, SOCKS5 127\.0\.0\.1:\d+ \(route 2 of 2\)/,
    );
  });

  it('--socks5-hostname carries the session and the trace shows the route and the SOCKS steps', async () => {
    const r = await wsviaAsync([
      'connect',
      `ws://localhost:${echo.port}/`,
      '--socks5-hostname',
      `127.0.0.1:${socks.port}`,
      '--proxy-anyauth',
      '--send',
      'hello socks',
      '--expect',
      '1',
      '--trace',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello socks\n');
    assert.match(
      r.stderr,
      new RegExp(`\\* route: proxy socks5h://127\\.0\\.0\\.1:${socks.port} from the options`),
    );
    assert.match(r.stderr, /\* socks5h: CONNECT localhost:\d+ via socks5h:.*\(name resolved by the proxy\)/);
    assert.match(r.stderr, /\* socks5h: granted by/);
  });
});
