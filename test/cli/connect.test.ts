/**
 * `wsvia connect` as a user runs it: scripted sends and expects, JSON events, stdin lines, the --trace
 * transcript hop by hop with credentials redacted, the environment's proxies, and one exit code per failure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { EXIT_CODES } from '../../src/errors.js';
import { localhostCert } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedProxy } from '../helpers/scripted-proxy.js';
import { startSquid } from '../helpers/squid.js';
import { freePort, type RunningProxy } from '../helpers/process.js';

let echo: EchoServer;
let secure: EchoServer;
let squid: RunningProxy;
let authSquid: RunningProxy;
before(async () => {
  [echo, secure, squid, authSquid] = await Promise.all([
    startEchoServer({ port: 0 }),
    startEchoServer({ port: 0, tls: localhostCert() }),
    startSquid(),
    startSquid({ auth: 'both', users: { carol: 's3cret-pass' } }),
  ]);
});
after(() => Promise.all([echo.close(), secure.close(), squid.stop(), authSquid.stop()]));

describe('wsvia connect', () => {
  test('--send and --expect: prints the echo and exits 0', async () => {
    const r = await runCli(['connect', echo.url, '--send', 'one', '--send', 'two', '--expect', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'one\ntwo\n');
  });

  test('stdin lines are sent as text messages; EOF closes', async () => {
    const r = await runCli(['connect', echo.url, '--expect', '2'], { input: 'alpha\nbeta\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'alpha\nbeta\n');
  });

  test('--json: one object per event', async () => {
    const r = await runCli(['connect', echo.url, '--send', 'hi', '--expect', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      events.map((e) => e.event),
      ['open', 'message', 'close'],
    );
    assert.deepEqual(events[1], { event: 'message', binary: false, data: 'hi' });
  });

  test('--trace through squid with Digest auth: the transcript hop by hop, no secret in it', async () => {
    const proxy = authSquid.url.replace('http://', 'http://carol:s3cret-pass@');
    const r = await runCli([
      'connect',
      secure.url.replace('127.0.0.1', 'localhost'),
      '--proxy',
      proxy,
      '--ca',
      caFile(),
      '--trace',
      '--send',
      'x',
      '--expect',
      '1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const t = r.stderr;
    for (const line of [
      'client > proxy',
      'CONNECT localhost:',
      'proxy > client',
      'HTTP/1.1 407',
      'HTTP/1.1 200',
      'client > server',
      'GET / HTTP/1.1',
      'Upgrade: websocket',
      'server > client',
      'HTTP/1.1 101 Switching Protocols',
      '* tls: TLSv1.3 with server (sni localhost)',
    ]) {
      assert.ok(t.includes(line), `trace lacks ${JSON.stringify(line)}:\n${t}`);
    }
    assert.ok(t.indexOf('client > proxy') < t.indexOf('client > server'), 'the proxy hop comes first');
    assert.match(t, /Proxy-Authorization: Digest username="carol", \*\*\*/);
    assert.doesNotMatch(t, /s3cret/);
    assert.doesNotMatch(r.stdout, /s3cret/);
    assert.match(t, /proxy > client {2}\(\d+\.\d ms\)/, 'each hop is timed');
  });

  test('the proxy from the environment (https_proxy for wss) and --no-proxy ignoring it', async () => {
    const viaEnv = await runCli(
      ['connect', secure.url, '--insecure', '--trace', '--send', 'e', '--expect', '1'],
      { env: { https_proxy: squid.url } },
    );
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stderr, /route: proxy http:\/\/127\.0\.0\.1:\d+ from https_proxy/);
    const direct = await runCli(
      ['connect', secure.url, '--insecure', '--no-proxy', '--trace', '--send', 'e', '--expect', '1'],
      { env: { https_proxy: 'http://127.0.0.1:9' } },
    );
    assert.equal(direct.code, 0, direct.stderr);
    assert.match(direct.stderr, /route: direct/);
  });

  test('--reconnect: waits out a server that is not up yet, with backoff, then delivers', async () => {
    const port = await freePort();
    let late: EchoServer | undefined;
    let starting: Promise<EchoServer> | undefined;
    const r = await runCli(
      ['connect', `ws://127.0.0.1:${port}/`, '--reconnect', '--json', '--send', 'late', '--expect', '1'],
      {
        timeoutMs: 20_000,
        // The server comes up only once the client has reported a refused attempt.
        onStdout: (out) => {
          if (!starting && out.includes('"reconnecting"'))
            starting = startEchoServer({ port }).then((s) => (late = s));
        },
      },
    );
    await starting;
    await late?.close();
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; data?: string; error?: { code: string } });
    assert.ok(
      events.some((e) => e.event === 'reconnecting' && e.error?.code === 'CONNECTION_REFUSED'),
      r.stdout,
    );
    assert.deepEqual(
      events.filter((e) => e.event === 'message').map((e) => e.data),
      ['late'],
    );
  });

  test('--help prints usage and exits 0; bad usage exits 2', async () => {
    const help = await runCli(['connect', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--proxy-user/);
    const bad = await runCli(['connect']);
    assert.equal(bad.code, EXIT_CODES.usage);
    assert.match(bad.stderr, /missing URL/);
    const unknown = await runCli(['connect', echo.url, '--bogus']);
    assert.equal(unknown.code, EXIT_CODES.usage);
  });
});

describe('wsvia connect exit codes', () => {
  test('proxy refused (403): 3', async () => {
    const p = await startScriptedProxy((s) => s.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
    try {
      const r = await runCli(['connect', echo.url, '--proxy', p.url, '--send', 'x']);
      assert.equal(r.code, EXIT_CODES.proxyRefused);
      assert.match(r.stderr, /answered "403 Forbidden" to CONNECT .*\[PROXY_REFUSED, hop proxy\]/);
      assert.match(r.stderr, /hint: /);
    } finally {
      await p.stop();
    }
  });

  test('proxy auth (407 without credentials): 4, naming the schemes', async () => {
    const r = await runCli(['connect', echo.url, '--proxy', authSquid.url, '--send', 'x']);
    assert.equal(r.code, EXIT_CODES.proxyAuth);
    assert.match(r.stderr, /offers Digest, Basic/);
  });

  test('TLS (untrusted certificate): 5', async () => {
    const r = await runCli(['connect', secure.url, '--send', 'x']);
    assert.equal(r.code, EXIT_CODES.tls);
    assert.match(r.stderr, /TLS_UNTRUSTED/);
  });

  test('upgrade rejected: 6', async () => {
    const server = http.createServer((_q, res) => {
      res.writeHead(404);
      res.end('no such endpoint');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await runCli([
        'connect',
        `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/nope`,
        '--send',
        'x',
      ]);
      assert.equal(r.code, EXIT_CODES.upgradeRejected);
      assert.match(r.stderr, /answered "404 Not Found" to the WebSocket upgrade/);
      assert.match(r.stderr, /body: no such endpoint/);
    } finally {
      server.close();
    }
  });

  test('timeout (a proxy that stalls, --timeout 0.3): 7', async () => {
    const p = await startScriptedProxy(() => {});
    try {
      const r = await runCli(['connect', echo.url, '--proxy', p.url, '--timeout', '0.3', '--send', 'x']);
      assert.equal(r.code, EXIT_CODES.timeout);
      assert.match(r.stderr, /TUNNEL_TIMEOUT/);
    } finally {
      await p.stop();
    }
  });

  test('network (connection refused, DNS failure): 8', async () => {
    const srv = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const refused = await runCli(['connect', `ws://127.0.0.1:${port}/`, '--send', 'x']);
    assert.equal(refused.code, EXIT_CODES.network);
    const dns = await runCli(['connect', 'ws://no-such-host.invalid/', '--send', 'x']);
    assert.equal(dns.code, EXIT_CODES.network);
    assert.match(dns.stderr, /DNS_FAILED/);
  });
});

let caPath: string | undefined;
/** The test certificate in a file, as --ca takes it. */
function caFile(): string {
  if (!caPath) {
    caPath = path.join(os.tmpdir(), `wsvia-test-ca-${process.pid}.pem`);
    fs.writeFileSync(caPath, localhostCert().cert);
  }
  return caPath;
}
