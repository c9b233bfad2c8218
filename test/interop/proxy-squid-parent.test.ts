/** `wsvia proxy --upstream` chained through a real squid with Basic auth, as squid's cache_peer would be. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { startEchoServer } from '../../src/echo/echo-server.js';
import { parseProxyUrl } from '../../src/route/proxy-url.js';
import { freePort, startPeer, tempDir } from '../helpers/process.js';
import { connectRequest, errorAnswer, startProxy } from '../helpers/proxy.js';

describe('wsvia proxy with squid as its parent', () => {
  it('chains tunnels through squid with credentials; a refusal by squid is a 502 that quotes it', async () => {
    const dir = tempDir();
    const port = await freePort();
    execFileSync('htpasswd', ['-cb', path.join(dir, 'squid.htpasswd'), 'parent', 'pw']);
    fs.writeFileSync(
      path.join(dir, 'squid.conf'),
      [
        `http_port 127.0.0.1:${port}`,
        `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${dir}/squid.htpasswd`,
        'auth_param basic realm test',
        'acl authed proxy_auth REQUIRED',
        'http_access allow authed',
        'http_access deny all',
        'cache deny all',
        `access_log stdio:${dir}/access.log`,
        `cache_log ${dir}/cache.log`,
        `pid_filename ${dir}/squid.pid`,
        `coredump_dir ${dir}`,
        'shutdown_lifetime 1 seconds',
        '',
      ].join('\n'),
    );
    for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
    fs.chmodSync(dir, 0o777);
    const squid = await startPeer('squid', ['-N', '-f', path.join(dir, 'squid.conf')], {
      port,
      timeoutMs: 30_000,
    });
    const echo = await startEchoServer();
    const child = await startProxy({ upstream: parseProxyUrl(`http://parent:pw@127.0.0.1:${port}`) });
    const wrong = await startProxy({ upstream: parseProxyUrl(`http://parent:nope@127.0.0.1:${port}`) });
    after(async () => {
      await child.close();
      await wrong.close();
      await echo.close();
      await squid.stop();
    });
    const ws = await connect(echo.url, { proxy: child.url });
    ws.send('via squid');
    assert.equal(await new Promise<string>((r) => ws.once('message', (d) => r(String(d)))), 'via squid');
    ws.terminate();
    // The tunnel went through squid, as user "parent" (squid logs it when the tunnel ends).
    const log = path.join(dir, 'access.log');
    const line = new RegExp(`TCP_TUNNEL/200 .*CONNECT 127\\.0\\.0\\.1:${echo.port} parent`);
    for (let i = 0; i < 200 && !(fs.existsSync(log) && line.test(fs.readFileSync(log, 'utf8'))); i++)
      await new Promise((res) => setTimeout(res, 50));
    assert.match(fs.readFileSync(log, 'utf8'), line);
    const r = await errorAnswer(wrong.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(r.status, 502);
    assert.match(r.body, /rejected the credentials of user "parent"/);
    assert.ok(!r.body.includes('nope'));
  });
});
