/**
 * ReconnectingWebSocket against a real echo server that goes away and comes back on the same port: messages
 * sent meanwhile are queued within bounds and delivered after, QUEUE_FULL beyond them, and failures a retry
 * cannot fix end it at once.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { ReconnectingWebSocket } from '../../src/client/reconnecting.js';
import { startEchoServer } from '../../src/echo/echo-server.js';
import { WsviaError } from '../../src/errors.js';
import { startScriptedProxy } from '../helpers/scripted-proxy.js';

test('reconnects after the server restarts and delivers what was queued meanwhile', async () => {
  let server = await startEchoServer({ port: 0 });
  const port = server.port;
  const client = new ReconnectingWebSocket(server.url, {
    proxy: false,
    reconnect: { initialDelay: 50, maxDelay: 200 },
  }).start();
  try {
    await once(client, 'open');
    const received: string[] = [];
    client.on('message', (d) => received.push(d.toString()));
    const reconnecting = once(client, 'reconnecting');
    await server.close();
    await reconnecting;
    client.send('queued-1');
    client.send('queued-2');
    assert.equal(client.queued, 2);
    server = await startEchoServer({ port });
    const [, attempt] = (await once(client, 'open')) as [unknown, number];
    assert.ok(attempt >= 1);
    for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(received, ['queued-1', 'queued-2']);
  } finally {
    client.close();
    await server.close();
  }
});

test('the queue is bounded: QUEUE_FULL instead of silent loss', () => {
  const client = new ReconnectingWebSocket('ws://127.0.0.1:9/', {
    proxy: false,
    reconnect: { initialDelay: 10_000, maxQueuedMessages: 2, maxQueuedBytes: 1000 },
  });
  client.send('a');
  client.send('b');
  assert.throws(
    () => client.send('c'),
    (e: unknown) => e instanceof WsviaError && e.code === 'QUEUE_FULL',
  );
  const big = new ReconnectingWebSocket('ws://127.0.0.1:9/', {
    proxy: false,
    reconnect: { maxQueuedBytes: 10 },
  });
  assert.throws(
    () => big.send('x'.repeat(11)),
    (e: unknown) => e instanceof WsviaError && e.code === 'QUEUE_FULL',
  );
  client.close();
  big.close();
});

test('a failure retrying cannot fix (407 without credentials) ends it with that error', async () => {
  const proxy = await startScriptedProxy((s) =>
    s.end(
      'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n',
    ),
  );
  try {
    const client = new ReconnectingWebSocket('ws://127.0.0.1:9/', {
      proxy: proxy.url,
      reconnect: { initialDelay: 10 },
    }).start();
    const [err] = (await once(client, 'error')) as [WsviaError];
    assert.equal(err.code, 'PROXY_AUTH_REQUIRED');
    assert.equal(proxy.heads.length, 1, 'no retry hammering the proxy');
  } finally {
    await proxy.stop();
  }
});

test('a dead proxy is retried with backoff up to maxAttempts', async () => {
  const client = new ReconnectingWebSocket('ws://127.0.0.1:9/', {
    proxy: 'http://127.0.0.1:9',
    reconnect: { initialDelay: 10, maxDelay: 20, maxAttempts: 3 },
  }).start();
  const delays: number[] = [];
  client.on('reconnecting', (_a, delay) => delays.push(delay));
  const [err] = (await once(client, 'error')) as [WsviaError];
  assert.equal(err.code, 'PROXY_CONNECT_FAILED');
  assert.equal(delays.length, 3);
  assert.ok(delays.every((d) => d >= 0 && d <= 20));
});
