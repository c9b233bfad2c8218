import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createProxy } from 'proxy';
import { connect } from '../../src/client/connect.js';
import { dialDetailed } from '../../src/dial/dial.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned } from '../../src/echo/self-signed.js';
import { formatTraceEvent } from '../../src/observe/format-trace.js';
import type { TraceRecord } from '../../src/observe/trace.js';
import { freePort, type RunningProxy } from '../helpers/process.js';
import { startMicrosocks } from '../helpers/socks-peers.js';
import { startTinyproxy } from '../helpers/tinyproxy.js';
import { wsviaRejection } from '../helpers/wsvia-rejection.js';
import { echoOnce } from '../helpers/ws.js';

describe('chains of proxies (preproxy, proxy lists)', () => {
  let echo: EchoServer;
  let tlsEcho: EchoServer;
  let ca: string;
  let socks: RunningProxy;
  let http: RunningProxy;
  let closedPort: number;

  before(async () => {
    const pair = makeSelfSigned();
    ca = pair.cert;
    echo = await startEchoServer();
    tlsEcho = await startEchoServer({ tls: pair });
    closedPort = await freePort();
    [socks, http] = await Promise.all([startMicrosocks(), startTinyproxy()]);
  });
  after(async () => {
    await Promise.all([socks?.stop(), http?.stop()]);
    await Promise.all([echo?.close(), tlsEcho?.close()]);
  });

  it('--preproxy socks5h then an HTTP proxy: microsocks -> tinyproxy -> echo, every hop traced', async () => {
    const events: TraceRecord[] = [];
    const ws = await connect(echo.url, {
      preproxy: `socks5h://127.0.0.1:${socks.port}`,
      proxy: `http://127.0.0.1:${http.port}`,
      trace: (e) => events.push(e),
    });
    assert.equal(await echoOnce(ws, 'two hops'), 'two hops');
    ws.close();
    const text = events.map(formatTraceEvent).join('\n');
    assert.match(text, /route: proxy http:\/\/127\.0\.0\.1:\d+ from the options; through preproxy socks5h:/);
    assert.match(text, /tcp: connected to proxy 127\.0\.0\.1:/);
    assert.match(text, new RegExp(`socks5h: CONNECT 127\\.0\\.0\\.1:${http.port} via socks5h://`));
    assert.match(text, /hop 2\/2: http:\/\/127\.0\.0\.1:\d+, reached through socks5h:/);
    assert.match(text, new RegExp(`CONNECT 127\\.0\\.0\\.1:${echo.port} HTTP/1\\.1`));
    assert.match(http.log(), new RegExp(`CONNECT.*127\\.0\\.0\\.1:${echo.port}`), 'tinyproxy carried it');
  });

  it('a proxy list is a chain: HTTP CONNECT into the SOCKS proxy, then wss to the target', async () => {
    const ws = await connect(`wss://localhost:${tlsEcho.port}/`, {
      proxy: [`http://127.0.0.1:${http.port}`, `socks5h://127.0.0.1:${socks.port}`],
      ca,
    });
    assert.equal(await echoOnce(ws, 'secure chain'), 'secure chain');
    ws.close();
  });

  it('an https:// proxy inside a SOCKS tunnel: TLS to the proxy, then TLS to the target, both verified', async () => {
    const pair = makeSelfSigned();
    const server = createProxy(https.createServer({ cert: pair.cert, key: pair.key }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const events: TraceRecord[] = [];
      const ws = await connect(`wss://localhost:${tlsEcho.port}/`, {
        proxy: [`socks5h://127.0.0.1:${socks.port}`, `https://localhost:${port}`],
        proxyCa: pair.cert,
        ca,
        trace: (e) => events.push(e),
      });
      assert.equal(await echoOnce(ws, 'tls in tls in socks'), 'tls in tls in socks');
      ws.close();
      const tls = events.filter((e) => e.type === 'tls').map((e) => (e as { to: string }).to);
      assert.deepEqual(tls, ['proxy', 'server']);
      const e = await wsviaRejection(
        dialDetailed(`wss://localhost:${tlsEcho.port}/`, {
          proxy: [`socks5h://127.0.0.1:${socks.port}`, `https://localhost:${port}`],
          ca,
        }),
      );
      assert.match(e.code, /^(PROXY_TLS_FAILED|TLS_UNTRUSTED)$/);
      assert.equal(e.hop, 'proxy');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('an error in a chain names its hop: proxy 1 cannot reach proxy 2', async () => {
    const e = await wsviaRejection(
      dialDetailed(echo.url, {
        preproxy: `socks5h://127.0.0.1:${socks.port}`,
        proxy: `http://127.0.0.1:${closedPort}`,
      }),
    );
    assert.equal(e.code, 'PROXY_UNAVAILABLE');
    assert.match(e.message, /connection refused \(reply 5\)/);
    assert.match(e.message, /\[proxy 1 of 2 in the chain socks5h:\/\/127\.0\.0\.1:\d+ -> http:/);
    assert.equal(e.details?.chainIndex, 0);
  });

  it('an error in a chain names its hop: proxy 1 is not running', async () => {
    const e = await wsviaRejection(
      dialDetailed(echo.url, {
        proxy: [`socks5h://127.0.0.1:${closedPort}`, `http://127.0.0.1:${http.port}`],
      }),
    );
    assert.equal(e.code, 'PROXY_CONNECT_FAILED');
    assert.match(e.message, /\[proxy 1 of 2 in the chain/);
  });

  it('an error in a chain names its hop: proxy 2 refuses the target', async () => {
    const e = await wsviaRejection(
      dialDetailed(`ws://127.0.0.1:${closedPort}/`, {
        proxy: [`socks5h://127.0.0.1:${socks.port}`, `http://127.0.0.1:${http.port}`],
      }),
    );
    assert.equal(e.hop, 'proxy');
    assert.match(e.message, /\[proxy 2 of 2 in the chain/);
    assert.equal(e.proxy, `http://127.0.0.1:${http.port}`);
  });
});
