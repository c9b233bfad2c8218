import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { dialDetailed } from '../../src/dial/dial.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned } from '../../src/echo/self-signed.js';
import type { TraceRecord } from '../../src/observe/trace.js';
import { freePort, type RunningProxy } from '../helpers/process.js';
import { startSocks4Server, ensureSystemUser, startDante, startMicrosocks } from '../helpers/socks-peers.js';
import { wsviaRejection } from '../helpers/wsvia-rejection.js';
import { echoOnce } from '../helpers/ws.js';

const USER = 'wsviasocks';
const PASS = 's3cret:pass';

describe('SOCKS routes against real proxies', () => {
  let echo: EchoServer;
  let tlsEcho: EchoServer;
  let ca: string;
  let dante: RunningProxy;
  let danteOpen: RunningProxy;
  let microsocks: RunningProxy;
  let closedPort: number;
  let blockedEcho: EchoServer;

  before(async () => {
    ensureSystemUser(USER, PASS);
    const pair = makeSelfSigned();
    ca = pair.cert;
    echo = await startEchoServer();
    blockedEcho = await startEchoServer();
    tlsEcho = await startEchoServer({ tls: pair });
    closedPort = await freePort();
    [dante, danteOpen, microsocks] = await Promise.all([
      startDante({ auth: true, blockPorts: [blockedEcho.port] }),
      startDante(),
      startMicrosocks(),
    ]);
  });
  after(async () => {
    await Promise.all([dante?.stop(), danteOpen?.stop(), microsocks?.stop()]);
    await Promise.all([echo?.close(), tlsEcho?.close(), blockedEcho?.close()]);
  });

  it('SOCKS5 with username/password (RFC 1929) through dante carries a WebSocket', async () => {
    const events: TraceRecord[] = [];
    const ws = await connect(echo.url, {
      proxy: `socks5://${USER}:${encodeURIComponent(PASS)}@127.0.0.1:${dante.port}`,
      trace: (e) => events.push(e),
    });
    assert.equal(await echoOnce(ws, 'through dante'), 'through dante');
    ws.close();
    const notes = events.filter((e) => e.type === 'note').map((e) => (e as { text: string }).text);
    assert.ok(notes.some((t) => t.startsWith('socks5: CONNECT 127.0.0.1:') && t.includes(`user "${USER}"`)));
    assert.ok(notes.some((t) => t.startsWith('socks5: granted by')));
    assert.ok(!JSON.stringify(events).includes('s3cret'), 'the password never reaches the trace');
  });

  it('proxyAuth supplies the SOCKS5 credentials when the URL has none', async () => {
    const ws = await connect(echo.url, {
      proxy: `socks5://127.0.0.1:${dante.port}`,
      proxyAuth: `${USER}:${PASS}`,
    });
    assert.equal(await echoOnce(ws, 'x'), 'x');
    ws.close();
  });

  it('a wrong password is PROXY_AUTH_REQUIRED naming the RFC 1929 failure', async () => {
    const e = await wsviaRejection(
      connect(echo.url, { proxy: `socks5://${USER}:wrong@127.0.0.1:${dante.port}` }),
    );
    assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
    assert.equal(e.hop, 'proxy');
    assert.match(e.message, /username\/password authentication failed/);
    assert.ok(!e.message.includes('wrong'));
    assert.equal(e.proxy, `socks5://${USER}:***@127.0.0.1:${dante.port}`);
  });

  it('no credentials for a proxy that requires them is PROXY_AUTH_REQUIRED with a hint', async () => {
    const e = await wsviaRejection(connect(echo.url, { proxy: `socks5://127.0.0.1:${dante.port}` }));
    assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
    assert.match(e.message, /no acceptable authentication method/);
    assert.match(e.hint ?? '', /--proxy-user/);
  });

  it("the rule set's refusal is PROXY_REFUSED naming the SOCKS reply", async () => {
    const e = await wsviaRejection(
      connect(blockedEcho.url, {
        proxy: `socks5://${USER}:${encodeURIComponent(PASS)}@127.0.0.1:${dante.port}`,
      }),
    );
    assert.equal(e.code, 'PROXY_REFUSED');
    assert.equal(e.hop, 'proxy');
    assert.match(e.message, /connection not allowed by ruleset \(reply 2\)/);
    assert.equal(e.answer?.statusLine, 'SOCKS: connection not allowed by ruleset (reply 2)');
  });

  it('a closed destination port is PROXY_UNAVAILABLE: connection refused (reply 5)', async () => {
    const e = await wsviaRejection(
      connect(`ws://127.0.0.1:${closedPort}/`, { proxy: `socks5h://127.0.0.1:${microsocks.port}` }),
    );
    assert.equal(e.code, 'PROXY_UNAVAILABLE');
    assert.match(e.message, /connection refused \(reply 5\)/);
  });

  it('socks5h sends the name to microsocks; socks5 resolves it here (curl)', async () => {
    const url = `ws://localhost:${echo.port}/`;
    for (const scheme of ['socks5h', 'socks5'] as const) {
      const events: TraceRecord[] = [];
      const ws = await connect(url, {
        proxy: `${scheme}://127.0.0.1:${microsocks.port}`,
        trace: (e) => events.push(e),
      });
      assert.equal(await echoOnce(ws, scheme), scheme);
      ws.close();
      const notes = events.filter((e) => e.type === 'note').map((e) => (e as { text: string }).text);
      if (scheme === 'socks5h') {
        assert.ok(
          notes.some(
            (t) => t.includes(`CONNECT localhost:${echo.port}`) && t.includes('resolved by the proxy'),
          ),
        );
        assert.ok(!events.some((e) => e.type === 'dns'));
      } else {
        assert.ok(
          notes.some((t) => t.includes('(localhost resolved locally)')),
          notes.join('\n'),
        );
        assert.ok(events.some((e) => e.type === 'dns' && e.host === 'localhost'));
      }
    }
  });

  it('wss over socks5h: TLS to the target inside the SOCKS tunnel, certificate checked', async () => {
    const ws = await connect(`wss://localhost:${tlsEcho.port}/`, {
      proxy: `socks5h://127.0.0.1:${microsocks.port}`,
      ca,
    });
    assert.equal(await echoOnce(ws, 'secure'), 'secure');
    ws.close();
    const e = await wsviaRejection(
      connect(`wss://localhost:${tlsEcho.port}/`, { proxy: `socks5h://127.0.0.1:${microsocks.port}` }),
    );
    assert.equal(e.code, 'TLS_UNTRUSTED');
  });

  it('SOCKS4 through dante, the name resolved here', async () => {
    const ws = await connect(`ws://localhost:${echo.port}/`, {
      proxy: `socks4://127.0.0.1:${danteOpen.port}`,
    });
    assert.equal(await echoOnce(ws, 'socks4'), 'socks4');
    ws.close();
  });

  it('dante does not speak SOCKS4a: its reply 91 is PROXY_REFUSED, quoted', async () => {
    const e = await wsviaRejection(
      connect(`ws://localhost:${echo.port}/`, { proxy: `socks4a://127.0.0.1:${danteOpen.port}` }),
    );
    assert.equal(e.code, 'PROXY_REFUSED');
    assert.match(e.message, /request rejected or failed \(reply 91\)/);
  });

  it('SOCKS4a sends the name and the user id to the proxy; SOCKS4 sends an address', async () => {
    const s4 = await startSocks4Server({ allowUser: 'alice' });
    try {
      for (const scheme of ['socks4a', 'socks4'] as const) {
        const ws = await connect(`ws://localhost:${echo.port}/`, {
          proxy: `${scheme}://alice@127.0.0.1:${s4.port}`,
        });
        assert.equal(await echoOnce(ws, scheme), scheme);
        ws.close();
      }
      assert.deepEqual(
        s4.requests.map((r) => [r.userId, r.host]),
        [
          ['alice', 'localhost'],
          ['alice', '127.0.0.1'],
        ],
      );
      const e = await wsviaRejection(
        connect(`ws://localhost:${echo.port}/`, { proxy: `socks4a://bob@127.0.0.1:${s4.port}` }),
      );
      assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
      assert.match(e.message, /reply 93/);
    } finally {
      await s4.close();
    }
  });

  it('SOCKS4 cannot carry an IPv6 destination', async () => {
    const e = await wsviaRejection(
      dialDetailed(`ws://[::1]:${echo.port}/`, { proxy: `socks4://127.0.0.1:${danteOpen.port}` }),
    );
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.match(e.message, /IPv4 addresses only/);
  });

  it('a SOCKS4 request to a SOCKS5-only proxy fails with a clear error', async () => {
    const e = await wsviaRejection(
      connect(echo.url, { proxy: `socks4://127.0.0.1:${microsocks.port}`, timeouts: { tunnel: 5000 } }),
    );
    assert.equal(e.hop, 'proxy');
    assert.ok(
      ['CONNECTION_RESET', 'PROTOCOL_ERROR', 'PROXY_REFUSED', 'TUNNEL_TIMEOUT'].includes(e.code),
      e.message,
    );
  });

  it('a proxy that never answers the handshake is TUNNEL_TIMEOUT', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => void held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const e = await wsviaRejection(
        dialDetailed(echo.url, { proxy: `socks5h://127.0.0.1:${port}`, timeouts: { tunnel: 300 } }),
      );
      assert.equal(e.code, 'TUNNEL_TIMEOUT');
      assert.equal(e.hop, 'proxy');
    } finally {
      for (const s of held) s.destroy();
      silent.close();
    }
  });

  it('a SOCKS proxy that is not running is PROXY_CONNECT_FAILED', async () => {
    const e = await wsviaRejection(dialDetailed(echo.url, { proxy: `socks5://127.0.0.1:${closedPort}` }));
    assert.equal(e.code, 'PROXY_CONNECT_FAILED');
  });
});
