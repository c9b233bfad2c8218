/**
 * `--web DIR` through the real bridge: the own-origin check compares against the address the bridge listens on,
 * never the request's Host (DNS rebinding), and the web root never serves what a symbolic link points to outside.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startBridge, type Bridge } from '../../src/bridge/server.js';
import { tempDir } from '../helpers/process.js';
import { tcpEcho, type TcpServer } from './tcp-servers.js';

/** The status the bridge answers an upgrade with: 101, or its refusal's. */
function upgradeStatus(url: string, headers: Record<string, string>, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ...(origin === undefined ? {} : { origin }) });
    ws.once('upgrade', (res) => {
      ws.terminate();
      resolve(res.statusCode ?? 0);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', (e) => reject(e));
  });
}

describe('wsvia bridge --web', () => {
  let echo: TcpServer;
  let web: string;
  let outside: string;
  let bridge: Bridge;
  before(async () => {
    echo = await tcpEcho();
    web = tempDir();
    outside = tempDir();
    fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>page</title>');
    fs.mkdirSync(path.join(web, 'sub'));
    fs.writeFileSync(path.join(web, 'sub', 'app.js'), 'ok();');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret');
    fs.writeFileSync(path.join(outside, 'index.html'), 'outside index');
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(web, 'secret.txt'));
    fs.symlinkSync(outside, path.join(web, 'elsewhere'));
    fs.symlinkSync(path.join(web, 'sub', 'app.js'), path.join(web, 'app.js'));
    bridge = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port }, web });
  });
  after(async () => {
    await bridge.close();
    await echo.close();
    fs.rmSync(web, { recursive: true });
    fs.rmSync(outside, { recursive: true });
  });

  it('refuses a DNS-rebinding page whose Host and Origin both carry its own name (403, not 101)', async () => {
    const name = `evil.example:${bridge.port}`;
    assert.equal(await upgradeStatus(bridge.url, { Host: name }, `http://${name}`), 403);
  });

  it("accepts the bridge's own address as Origin (and localhost on loopback), whatever the Host says", async () => {
    const port = bridge.port;
    assert.equal(await upgradeStatus(bridge.url, {}, `http://127.0.0.1:${port}`), 101);
    assert.equal(
      await upgradeStatus(bridge.url, { Host: `localhost:${port}` }, `http://localhost:${port}`),
      101,
    );
    assert.equal(await upgradeStatus(bridge.url, { Host: 'evil.example' }, `http://127.0.0.1:${port}`), 101);
    assert.equal(await upgradeStatus(bridge.url, {}, `http://127.0.0.1:${port + 1}`), 403);
    // Non-browser clients send no Origin.
    assert.equal(await upgradeStatus(bridge.url, {}), 101);
  });

  it('serves files and links that stay inside DIR, and nothing a link points to outside it (404)', async () => {
    const base = `http://127.0.0.1:${bridge.port}`;
    const get = async (p: string): Promise<[number, string]> => {
      const r = await fetch(`${base}${p}`);
      return [r.status, await r.text()];
    };
    assert.deepEqual(await get('/'), [200, '<!doctype html><title>page</title>']);
    assert.deepEqual(await get('/sub/app.js'), [200, 'ok();']);
    assert.deepEqual(await get('/app.js'), [200, 'ok();']);
    assert.equal((await get('/secret.txt'))[0], 404);
    assert.equal((await get('/elsewhere/secret.txt'))[0], 404);
    assert.equal((await get('/elsewhere/'))[0], 404);
    assert.equal((await get('/elsewhere'))[0], 404);
    assert.equal((await get('/%2e%2e/%2e%2e/etc/passwd'))[0], 404);
  });
});
