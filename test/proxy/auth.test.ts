import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Htpasswd } from '../../src/auth/htpasswd.js';
import { StaticUsers } from '../../src/auth/server-auth.js';
import { connect } from '../../src/client/connect.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { isWsviaError } from '../../src/errors.js';
import { AccessLog } from '../../src/observe/access-log.js';
import { tempDir } from '../helpers/process.js';
import {
  connectRequest,
  errorAnswer,
  request,
  startProxy,
  type RunningWsviaProxy,
} from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';

const basic = (user: string, pass: string): string =>
  `Proxy-Authorization: Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('wsvia proxy: authentication', () => {
  let proxy: RunningWsviaProxy;
  let echo: EchoServer;
  let logFile: string;
  before(async () => {
    echo = await startEchoServer();
    logFile = path.join(tempDir(), 'access.log');
    proxy = await startProxy({
      users: new StaticUsers(['alice:s3cret-pass']),
      accessLog: AccessLog.open(logFile),
    });
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  it('missing credentials: 407 with Digest and Basic challenges and Proxy-Status', async () => {
    const r = await errorAnswer(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(r.status, 407);
    const challenges = r.head.headers.filter(([k]) => k === 'Proxy-Authenticate').map(([, v]) => v);
    assert.ok(challenges.some((c) => c.startsWith('Digest ')));
    assert.ok(challenges.some((c) => c.startsWith('Basic ')));
    assert.match(r.proxyStatus, /error=http_request_denied/);
  });

  it('wrong password: 407; right password: 200 (Basic)', async () => {
    const bad = await errorAnswer(
      proxy.port,
      connectRequest(`127.0.0.1:${echo.port}`, [basic('alice', 'nope')]),
    );
    assert.equal(bad.status, 407);
    const good = await request(
      proxy.port,
      connectRequest(`127.0.0.1:${echo.port}`, [basic('alice', 's3cret-pass')]),
    );
    assert.equal(good.head.status, 200);
    good.socket.destroy();
    assert.equal(proxy.server.metrics.authFailures.get({ reason: 'rejected' }), 1);
  });

  it("wsvia's own client authenticates with Digest, and the credentials never reach the server", async () => {
    const ws = await connect(echo.url, { proxy: proxy.url, proxyAuth: 'alice:s3cret-pass' });
    ws.send('hello');
    const echoed = await new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    assert.equal(echoed, 'hello');
    ws.terminate();
    const last = echo.received[echo.received.length - 1];
    assert.ok(last);
    assert.ok(!last.headers.some(([k]) => k.toLowerCase() === 'proxy-authorization'));
  });

  it('a wrong password through connect() fails with PROXY_AUTH_REQUIRED', async () => {
    await assert.rejects(connect(echo.url, { proxy: proxy.url, proxyAuth: 'alice:wrong' }), (e) => {
      assert.ok(isWsviaError(e));
      assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
      return true;
    });
  });

  it('logs the user, never the credentials', async () => {
    await until(
      'a log line',
      () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('"user":"alice"'),
    );
    const log = fs.readFileSync(logFile, 'utf8');
    assert.ok(!log.includes('s3cret-pass'));
    assert.ok(!log.includes(Buffer.from('alice:s3cret-pass').toString('base64')));
    assert.ok(!/proxy-authorization/i.test(log));
    for (const line of log.trim().split('\n')) {
      const rec = JSON.parse(line) as Record<string, unknown>;
      for (const key of [
        'time',
        'client',
        'user',
        'method',
        'target',
        'status',
        'bytes_up',
        'bytes_down',
        'duration_ms',
        'close',
      ])
        assert.ok(key in rec, `${key} in ${line}`);
    }
  });

  it('htpasswd users (SHA-1 entry) authenticate with Basic', async () => {
    const sha = createHash('sha1').update('pw-from-file').digest('base64');
    const p = await startProxy({ users: Htpasswd.parse(`bob:{SHA}${sha}\n`) });
    after(() => p.close());
    const missing = await errorAnswer(p.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(missing.status, 407);
    assert.ok(missing.head.headers.some(([k, v]) => k === 'Proxy-Authenticate' && v.startsWith('Basic ')));
    assert.ok(!missing.head.headers.some(([k, v]) => k === 'Proxy-Authenticate' && v.startsWith('Digest ')));
    // Twice: the second is answered from the credentials cache; a wrong password after a success still fails.
    for (let i = 0; i < 2; i++) {
      const ok = await request(
        p.port,
        connectRequest(`127.0.0.1:${echo.port}`, [basic('bob', 'pw-from-file')]),
      );
      assert.equal(ok.head.status, 200);
      ok.socket.destroy();
    }
    const wrong = await errorAnswer(
      p.port,
      connectRequest(`127.0.0.1:${echo.port}`, [basic('bob', 'pw-from-filx')]),
    );
    assert.equal(wrong.status, 407);
  });
});

describe('wsvia proxy: secrets stay out of the access log', () => {
  it('a malformed credentials line and a URL with a password are not logged', async () => {
    const logFile = path.join(tempDir(), 'access.log');
    const p = await startProxy({ accessLog: AccessLog.open(logFile) });
    after(() => p.close());
    const bad = await errorAnswer(
      p.port,
      'CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization Basic c2VjcmV0LXh5eg==\r\n\r\n',
    );
    assert.equal(bad.status, 400);
    const url = await errorAnswer(
      p.port,
      'GET http://user:hunter2@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n',
    );
    assert.equal(url.status, 400);
    await p.close();
    const log = fs.readFileSync(logFile, 'utf8');
    assert.equal(log.trim().split('\n').length, 2);
    assert.ok(!log.includes('c2VjcmV0LXh5eg'), log);
    assert.ok(!log.includes('hunter2'), log);
  });
});
