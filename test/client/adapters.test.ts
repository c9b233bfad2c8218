import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import * as undici from 'undici';
import WebSocket from 'ws';
import { wsviaAgent } from '../../src/client/agent.js';
import { wsviaConnector, wsviaDispatcher } from '../../src/client/undici.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned } from '../../src/echo/self-signed.js';
import { isWsviaError } from '../../src/errors.js';
import { freePort, type RunningProxy } from '../helpers/process.js';
import { startMicrosocks } from '../helpers/socks-peers.js';
import { startTinyproxy } from '../helpers/tinyproxy.js';

function wsRoundTrip(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => ws.send(text));
    ws.once('message', (m) => resolve(String(m)));
  });
}

function get(
  mod: typeof http | typeof https,
  url: string,
  agent: http.Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    mod
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('adapters: ws agent, http(s) agent, undici dispatcher, against real proxies', () => {
  let echo: EchoServer;
  let tlsEcho: EchoServer;
  let ca: string;
  let tiny: RunningProxy;
  let socks: RunningProxy;
  let dead: number;

  before(async () => {
    const pair = makeSelfSigned();
    ca = pair.cert;
    echo = await startEchoServer();
    tlsEcho = await startEchoServer({ tls: pair });
    [tiny, socks] = await Promise.all([startTinyproxy(), startMicrosocks()]);
    dead = await freePort();
  });
  after(async () => {
    await Promise.all([tiny?.stop(), socks?.stop()]);
    await Promise.all([echo?.close(), tlsEcho?.close()]);
  });

  it('ws with wsviaAgent: ws:// and wss:// through tinyproxy', async () => {
    const agent = wsviaAgent({ proxy: `http://127.0.0.1:${tiny.port}`, ca });
    const ws = new WebSocket(echo.url, { agent });
    assert.equal(await wsRoundTrip(ws, 'agent ws'), 'agent ws');
    ws.close();
    const wss = new WebSocket(`wss://localhost:${tlsEcho.port}/`, { agent });
    assert.equal(await wsRoundTrip(wss, 'agent wss'), 'agent wss');
    wss.close();
    assert.match(tiny.log(), new RegExp(`CONNECT.*localhost:${tlsEcho.port}`));
  });

  it('ws with wsviaAgent through socks5h', async () => {
    const ws = new WebSocket(`ws://localhost:${echo.port}/`, {
      agent: wsviaAgent({ proxy: `socks5h://127.0.0.1:${socks.port}` }),
    });
    assert.equal(await wsRoundTrip(ws, 'agent socks'), 'agent socks');
    ws.close();
  });

  it('the same agent serves http.get and https.get', async () => {
    const agent = wsviaAgent({ proxy: `socks5h://127.0.0.1:${socks.port}`, ca });
    const plain = await get(http, `http://127.0.0.1:${echo.port}/`, agent);
    assert.equal(plain.status, 426);
    assert.match(plain.body, /WebSocket echo server/);
    const secure = await get(https, `https://localhost:${tlsEcho.port}/`, agent);
    assert.equal(secure.status, 426);
  });

  it("a failing route reaches ws's error event as a WsviaError", async () => {
    const ws = new WebSocket(echo.url, { agent: wsviaAgent({ proxy: `http://127.0.0.1:${dead}` }) });
    const err = await new Promise<unknown>((resolve) => ws.once('error', resolve));
    assert.ok(isWsviaError(err));
    assert.equal(err.code, 'PROXY_CONNECT_FAILED');
  });

  it("undici's fetch through a wsvia dispatcher (socks5h, then an HTTP proxy chain)", async () => {
    const dispatcher = (await wsviaDispatcher({
      proxy: [`socks5h://127.0.0.1:${socks.port}`, `http://127.0.0.1:${tiny.port}`],
      ca,
    })) as undici.Dispatcher;
    try {
      const res = await undici.fetch(`https://localhost:${tlsEcho.port}/`, { dispatcher });
      assert.equal(res.status, 426);
      assert.match(await res.text(), /WebSocket echo server/);
    } finally {
      await dispatcher.close();
    }
  });

  it("Node's global fetch accepts the wsvia dispatcher", async () => {
    const dispatcher = (await wsviaDispatcher({
      proxy: `socks5h://127.0.0.1:${socks.port}`,
    })) as undici.Dispatcher;
    try {
      const res = await globalThis.fetch(`http://localhost:${echo.port}/`, {
        dispatcher,
      } as unknown as RequestInit);
      assert.equal(res.status, 426);
      await res.text();
    } finally {
      await dispatcher.close();
    }
  });

  it("undici's WebSocket through an Agent with wsviaConnector", async () => {
    const dispatcher = new undici.Agent({
      connect: wsviaConnector({ proxy: `http://127.0.0.1:${tiny.port}` }) as never,
    });
    try {
      const ws = new undici.WebSocket(echo.url, { dispatcher });
      const got = await new Promise<string>((resolve, reject) => {
        ws.addEventListener('open', () => ws.send('undici ws'));
        ws.addEventListener('message', (e) => resolve(String(e.data)));
        ws.addEventListener('error', () => reject(new Error('undici WebSocket failed')));
      });
      assert.equal(got, 'undici ws');
      ws.close();
    } finally {
      await dispatcher.close();
    }
  });
});
