/**
 * The seed's TCP game in a real browser: headless Chromium loads the page from `wsvia bridge --web`, joins over a
 * WebSocket and plays a move; a plain TCP player sees it. A page from another origin is refused by the bridge.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { startDemo } from '../../../examples/tcp-game/demo.js';
import { launchChromium } from '../../helpers/browser.js';
import { until } from '../../helpers/eventually.js';

/** A TCP player: collects lines. */
function tcpPlayer(port: number, name: string) {
  const s = net.connect({ host: '127.0.0.1', port });
  s.setEncoding('utf8');
  let text = '';
  s.on('data', (c: string) => (text += c));
  s.write(`HELLO ${name}\n`);
  return {
    lines: () => text.split('\n'),
    send: (line: string) => s.write(`${line}\n`),
    close: () => s.destroy(),
  };
}

describe('examples/tcp-game in headless Chromium through wsvia bridge --web', () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  let browser: Browser;
  before(async () => {
    demo = await startDemo(0);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
  });

  it("joins, plays a move, and a TCP player sees it (and the browser sees the TCP player's)", async () => {
    const bob = tcpPlayer(demo.gamePort, 'bob');
    const page = await browser.newPage();
    try {
      await page.goto(demo.url);
      await page.fill('#name', 'alice');
      await page.click('button[type=submit]');
      await page.waitForSelector('#status:has-text("playing as alice")', { timeout: 15_000 });
      await page.click('#cell-0-0');
      await page.waitForSelector('#cell-0-0.mine:has-text("alice")', { timeout: 15_000 });
      await until("bob to see alice's move", () => bob.lines().includes('CELL 0 0 alice'));
      bob.send('MOVE 2 3');
      await page.waitForSelector('#cell-2-3.theirs:has-text("bob")', { timeout: 15_000 });
      assert.ok(demo.bridge.active >= 1);
    } finally {
      bob.close();
      await page.close();
    }
  });

  it('refuses a WebSocket from a page of another origin (cross-site WebSocket hijacking)', async () => {
    const other = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${(other.address() as net.AddressInfo).port}/`);
      const bridgeWs = demo.url.replace('http://', 'ws://');
      const result = await page.evaluate(
        (url) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(url, ['binary']);
            ws.onopen = () => resolve('open');
            ws.onclose = (e) => resolve(`closed ${e.code}`);
          }),
        bridgeWs,
      );
      assert.equal(result, 'closed 1006');
      const refused = demo.bridge.metrics.registry.render();
      assert.match(refused, /wsvia_bridge_refused_total\{reason="origin"\} 1/);
    } finally {
      await page.close();
      other.close();
    }
  });
});
