import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { makeSelfSigned } from '../../src/echo/self-signed.js';
import { launchChromium } from '../helpers/browser.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from './peers.js';

describe('gateway: a real browser (headless Chromium)', () => {
  let up: Upstream;
  let page: http.Server;
  let gw: TestGateway;
  let browser: Browser;
  before(async () => {
    up = await startUpstream('up');
    // The web app itself is served through the gateway too, as nginx would front it.
    page = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>wsvia</title><p>app</p>');
    });
    page.listen(0, '127.0.0.1');
    await once(page, 'listening');
    const pagePort = (page.address() as AddressInfo).port;
    gw = await startGateway(`
listen: 127.0.0.1:0
ping: 0.2
routes:
  - { path: /, upstream: http://127.0.0.1:${pagePort} }
  - { path: /ws, upstream: ${up.url} }
`);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw.gateway.close();
    await up.close();
    await new Promise((r) => page.close(r));
  });

  it('loads the page and opens a WebSocket through the gateway, pings answered by the browser', async () => {
    const tab = await browser.newPage();
    await tab.goto(`${gw.url}/`);
    assert.equal(await tab.title(), 'wsvia');
    const result = await tab.evaluate(async (url: string) => {
      return await new Promise<{ report: string; echo: string; protocol: string }>((resolve, reject) => {
        const ws = new WebSocket(url, ['chat.v2']);
        const got: string[] = [];
        ws.onmessage = (e) => {
          got.push(String(e.data));
          if (got.length === 1) ws.send('from chromium');
          // Wait past a few gateway pings before the echo counts: a browser answers pings by itself.
          else
            setTimeout(
              () => resolve({ report: got[0] as string, echo: got[1] as string, protocol: ws.protocol }),
              700,
            );
        };
        ws.onerror = () => reject(new Error('websocket error'));
      });
    }, `${gw.wsUrl}/ws/room`);
    const report = JSON.parse(result.report) as { headers: Record<string, string>; url: string };
    assert.equal(report.url, '/ws/room');
    assert.equal(report.headers['origin'], gw.url);
    assert.equal(result.echo, 'from chromium');
    assert.equal(result.protocol, 'chat.v2');
    await tab.close();
  });
});

describe('gateway: a real browser over https with HTTP/2 (headless Chromium)', () => {
  let page: http.Server;
  let gw: TestGateway;
  let browser: Browser;
  let dir: string;
  before(async () => {
    dir = tempDir();
    const cert = makeSelfSigned('localhost');
    fs.writeFileSync(path.join(dir, 'cert.pem'), cert.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), cert.key);
    page = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><title>wsvia h2</title><p>${String(req.headers['x-forwarded-proto'])}</p>`);
    });
    page.listen(0, '127.0.0.1');
    await once(page, 'listening');
    gw = await startGateway(`
tls-listen: 127.0.0.1:0
tls-cert: ${dir}/cert.pem
tls-key: ${dir}/key.pem
routes: [{ path: /, upstream: http://127.0.0.1:${(page.address() as AddressInfo).port} }]
`);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw.gateway.close();
    await new Promise((r) => page.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads a page through the gateway over https, negotiated to h2', async () => {
    // The certificate is self-signed; an IP address without SNI gets the gateway's default certificate.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const tab = await context.newPage();
    const res = await tab.goto(`https://127.0.0.1:${gw.tlsPort}/`);
    assert.equal(res?.status(), 200);
    assert.equal(await tab.title(), 'wsvia h2');
    assert.equal(await tab.textContent('p'), 'https');
    // The tests compile without the DOM types: the page evaluates this text.
    const protocol = await tab.evaluate<string>(
      'performance.getEntriesByType("navigation")[0].nextHopProtocol',
    );
    assert.equal(protocol, 'h2');
    await until('the access log line', () =>
      gw.records.some((r) => r['method'] === 'GET' && r['status'] === 200),
    );
    await context.close();
  });
});
