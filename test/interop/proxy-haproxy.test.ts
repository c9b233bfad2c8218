/** `wsvia proxy --proxy-protocol` behind a real HAProxy sending PROXY protocol v1 and v2: the real client is logged. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { AccessLog } from '../../src/observe/access-log.js';
import { freePort, startPeer, tempDir } from '../helpers/process.js';
import { connectRequest, readAll, request, startProxy, startTcpEcho } from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';

describe('wsvia proxy behind HAProxy (PROXY protocol)', () => {
  for (const sender of ['send-proxy', 'send-proxy-v2']) {
    it(`logs the real client address with HAProxy ${sender}`, async () => {
      const dir = tempDir();
      const logFile = path.join(dir, 'access.log');
      const echo = await startTcpEcho();
      const proxy = await startProxy({ proxyProtocol: true, accessLog: AccessLog.open(logFile) });
      const port = await freePort();
      fs.writeFileSync(
        path.join(dir, 'haproxy.cfg'),
        [
          'global',
          '  maxconn 100',
          'defaults',
          '  mode tcp',
          '  timeout connect 5s',
          '  timeout client 30s',
          '  timeout server 30s',
          'frontend fe',
          `  bind 127.0.0.1:${port}`,
          '  default_backend be',
          'backend be',
          `  server wsvia1 127.0.0.1:${proxy.port} ${sender}`,
          '',
        ].join('\n'),
      );
      const haproxy = await startPeer('haproxy', ['-f', path.join(dir, 'haproxy.cfg')], { port });
      after(async () => {
        await haproxy.stop();
        await proxy.close();
        await echo.close();
      });
      const a = await request(port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(a.head.status, 200);
      const clientPort = a.socket.localPort;
      a.socket.end('through haproxy');
      assert.equal((await readAll(a.socket, a.rest)).toString(), 'through haproxy');
      await until(
        'the log line',
        () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('"status":200'),
      );
      // HAProxy's own connection to the proxy has another source port: seeing ours proves the header was used.
      assert.match(fs.readFileSync(logFile, 'utf8'), new RegExp(`"client":"127\\.0\\.0\\.1:${clientPort}"`));
    });
  }
});
