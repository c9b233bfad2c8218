/**
 * A client wsvia did not write: the JDK's HttpClient WebSocket (java.net.http), through `wsvia proxy`, with the
 * proxy chosen by a ProxySelector. It tunnels ws:// with CONNECT like every other client.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { PassThrough } from 'node:stream';
import { AccessLog } from '../../src/observe/access-log.js';
import { eventually } from '../helpers/eventually.js';
import { startProxy, type RunningWsviaProxy } from '../helpers/wsvia-proxy.js';

const SOURCE = path.resolve('test/interop/jdk/WsEcho.java');

let proxy: RunningWsviaProxy;
let echo: EchoServer;
const log = new PassThrough();
let logged = '';
log.on('data', (d: Buffer) => (logged += d.toString()));
before(async () => {
  [proxy, echo] = await Promise.all([
    startProxy({ accessLog: new AccessLog(log) }),
    startEchoServer({ port: 0 }),
  ]);
});
after(() => Promise.all([proxy.close(), echo.close()]));

test("the JDK's HttpClient WebSocket through wsvia proxy", async () => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      'java',
      [SOURCE, echo.url, '127.0.0.1', String(proxy.port), 'hello from java'],
      { timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  assert.equal(out.trim(), 'echo: hello from java');
  assert.equal(echo.received.length, 1, 'the upgrade reached the server once');
  await eventually(() =>
    assert.match(logged, new RegExp(`"method":"CONNECT".*"target":"127\\.0\\.0\\.1:${echo.port}"`)),
  );
});
