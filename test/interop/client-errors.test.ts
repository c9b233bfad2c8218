/**
 * Every way a proxy or server can fail the client, provoked for real on loopback: each gives a WsviaError with
 * its code, the hop, what the peer answered and a hint. Also the CONNECT answer split at every byte across
 * reads, eager tunnel bytes glued to the 2xx, any 2xx, and a 407 answered on a fresh connection.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { connect } from '../../src/client/connect.js';
import { dial } from '../../src/dial/dial.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { WsviaError, type ErrorCode } from '../../src/errors.js';
import { localhostCert } from '../helpers/certs.js';
import { relay, startScriptedProxy, targetOf } from '../helpers/scripted-proxy.js';
import { echoOnce } from '../helpers/ws.js';
import { startBlackhole } from '../helpers/blackhole.js';
import { until } from '../helpers/eventually.js';

function expectCode(code: ErrorCode, check?: (e: WsviaError) => void) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof WsviaError, `expected a WsviaError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    check?.(e);
    return true;
  };
}

const answer = (status: string, headers: string[] = [], body = ''): string =>
  `HTTP/1.1 ${status}\r\n${[...headers, `Content-Length: ${Buffer.byteLength(body)}`].join('\r\n')}\r\n\r\n${body}`;

let echo: EchoServer;
before(async () => {
  echo = await startEchoServer({ port: 0 });
});
after(() => echo.close());

describe('proxies that refuse', () => {
  const cases: [string, string, ErrorCode, RegExp][] = [
    [
      '403',
      answer(
        '403 Forbidden',
        ['Server: corp-proxy'],
        '<html><body><h1>Access denied</h1> by rule 7</body></html>',
      ),
      'PROXY_REFUSED',
      /rules deny/,
    ],
    ['500', answer('500 Internal Server Error', [], 'boom'), 'PROXY_UNAVAILABLE', /failed internally/],
    [
      '502',
      answer('502 Bad Gateway', [], 'cannot reach'),
      'PROXY_UNAVAILABLE',
      /could not reach the destination/,
    ],
    [
      '503',
      answer('503 Service Unavailable', ['Retry-After: 7'], 'CONNECT pool is empty'),
      'PROXY_UNAVAILABLE',
      /out of capacity.*after 7 s/,
    ],
    ['405', answer('405 Method Not Allowed'), 'PROXY_REFUSED', /does not accept CONNECT/],
  ];
  for (const [name, text, code, hint] of cases) {
    test(`${name}: ${code}, with the status, headers and body excerpt`, async () => {
      const proxy = await startScriptedProxy((s) => s.end(text));
      try {
        await assert.rejects(
          connect(echo.url, { proxy: proxy.url }),
          expectCode(code, (e) => {
            assert.equal(e.hop, 'proxy');
            assert.equal(e.answer?.status, Number(name));
            assert.match(e.message, new RegExp(`answered "${name}`));
            assert.match(e.hint ?? '', hint);
            assert.match(e.message, /CONNECT 127\.0\.0\.1:\d+/);
            if (name === '403') {
              assert.equal(e.answer?.bodyExcerpt, 'Access denied by rule 7');
              assert.deepEqual(e.answer?.headers, [['Server', 'corp-proxy']]);
            }
          }),
        );
      } finally {
        await proxy.stop();
      }
    });
  }

  test('Proxy-Status (RFC 9209) is shown in the error', async () => {
    const proxy = await startScriptedProxy((s) =>
      s.end(
        answer('502 Bad Gateway', [
          'Proxy-Status: edge-7; error=dns_error; rcode=NXDOMAIN; details="no such host"',
        ]),
      ),
    );
    try {
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url }),
        expectCode('PROXY_UNAVAILABLE', (e) =>
          assert.match(
            e.message,
            /Proxy-Status: edge-7: error=dns_error, rcode=NXDOMAIN, details="no such host"/,
          ),
        ),
      );
    } finally {
      await proxy.stop();
    }
  });

  test("the proxy's own secrets (Set-Cookie) stay out of the trace", async () => {
    const proxy = await startScriptedProxy((s) =>
      s.end(answer('403 Forbidden', ['Set-Cookie: session=top-secret-cookie'])),
    );
    try {
      const lines: string[] = [];
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url, trace: (e) => lines.push(JSON.stringify(e)) }),
      );
      assert.ok(lines.some((l) => l.includes('Set-Cookie: ***')));
      assert.doesNotMatch(lines.join('\n'), /top-secret-cookie/);
    } finally {
      await proxy.stop();
    }
  });

  test('closes without answering: CONNECTION_RESET at the proxy hop', async () => {
    const proxy = await startScriptedProxy((s) => s.destroy());
    try {
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url }),
        expectCode('CONNECTION_RESET', (e) => assert.equal(e.hop, 'proxy')),
      );
    } finally {
      await proxy.stop();
    }
  });

  test('closes in the middle of its answer', async () => {
    const proxy = await startScriptedProxy((s) => s.end('HTTP/1.1 200 Conn'));
    try {
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url }),
        expectCode('CONNECTION_RESET', (e) => assert.match(e.message, /middle of its answer/)),
      );
    } finally {
      await proxy.stop();
    }
  });

  test('sends garbage: PROTOCOL_ERROR naming the bytes, at once', async () => {
    const proxy = await startScriptedProxy((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
    try {
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url }),
        expectCode('PROTOCOL_ERROR', (e) => assert.match(e.message, /SSH-2\.0/)),
      );
    } finally {
      await proxy.stop();
    }
  });

  test('speaks TLS on an http:// URL: the hint says to use https://', async () => {
    const proxy = await startScriptedProxy((s) => s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05])));
    try {
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url }),
        expectCode('PROTOCOL_ERROR', (e) => assert.match(e.hint ?? '', /https:\/\//)),
      );
    } finally {
      await proxy.stop();
    }
  });

  test('a head over 16 KiB: HEAD_TOO_LARGE', async () => {
    const proxy = await startScriptedProxy((s) =>
      s.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    try {
      await assert.rejects(connect(echo.url, { proxy: proxy.url }), expectCode('HEAD_TOO_LARGE'));
    } finally {
      await proxy.stop();
    }
  });

  test('stalls: TUNNEL_TIMEOUT after the configured time', async () => {
    const proxy = await startScriptedProxy(() => {});
    try {
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url, timeouts: { tunnel: 300 } }),
        expectCode('TUNNEL_TIMEOUT', (e) => assert.match(e.message, /300 ms/)),
      );
    } finally {
      await proxy.stop();
    }
  });

  test('nothing listens at the proxy address: PROXY_CONNECT_FAILED', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    await assert.rejects(
      connect(echo.url, { proxy: `http://127.0.0.1:${port}` }),
      expectCode('PROXY_CONNECT_FAILED', (e) => assert.equal(e.hop, 'tcp')),
    );
  });

  test('a proxy that never completes the TCP handshake: TCP_TIMEOUT at the tcp hop', async () => {
    const hole = await startBlackhole();
    try {
      await assert.rejects(
        connect(echo.url, { proxy: `http://127.0.0.1:${hole.port}`, timeouts: { tcp: 300 } }),
        expectCode('TCP_TIMEOUT', (e) => {
          assert.equal(e.hop, 'tcp');
          assert.match(e.message, /proxy http:\/\/127\.0\.0\.1:\d+/);
        }),
      );
      await assert.rejects(
        connect(`ws://127.0.0.1:${hole.port}/`, { timeouts: { tcp: 300 } }),
        expectCode('TCP_TIMEOUT'),
      );
    } finally {
      hole.stop();
    }
  });

  test('a proxy host that does not resolve: DNS_FAILED', async () => {
    await assert.rejects(
      connect(echo.url, { proxy: 'http://proxy.invalid:3128' }),
      expectCode('DNS_FAILED', (e) => assert.equal(e.hop, 'dns')),
    );
  });
});

describe('proxies that grant the tunnel', () => {
  test('any 2xx opens it, HTTP/1.0 or 1.1, with an interim 100 first', async () => {
    for (const status of [
      'HTTP/1.0 200 Connection established',
      'HTTP/1.1 201 Created',
      'HTTP/1.1 204 No Content',
      'HTTP/1.1 299 Whatever',
    ]) {
      const proxy = await startScriptedProxy((s, head, rest) => {
        const t = targetOf(head);
        s.write(`HTTP/1.1 100 Continue\r\n\r\n${status}\r\n\r\n`);
        relay(s, t.host, t.port, rest);
      });
      try {
        const ws = await connect(echo.url, { proxy: proxy.url });
        assert.equal(await echoOnce(ws, status), status);
        ws.close();
      } finally {
        await proxy.stop();
      }
    }
  });

  test('the answer split across reads at every byte opens the tunnel', async () => {
    const text = 'HTTP/1.1 200 Connection established\r\nVia: 1.1 slow\r\n\r\n';
    for (const split of [1, 5, 9, 17, text.length - 3, text.length - 1]) {
      const proxy = await startScriptedProxy((s, head, rest) => {
        const t = targetOf(head);
        s.write(text.slice(0, split));
        setTimeout(() => {
          s.write(text.slice(split));
          relay(s, t.host, t.port, rest);
        }, 20);
      });
      try {
        const ws = await connect(echo.url, { proxy: proxy.url });
        assert.equal(await echoOnce(ws, `split ${split}`), `split ${split}`);
        ws.close();
      } finally {
        await proxy.stop();
      }
    }
  });

  test('bytes glued to the 2xx belong to the tunnel and are never dropped', async () => {
    // A raw TCP service that speaks first: its greeting arrives in the same write as the proxy's 200.
    const proxy = await startScriptedProxy((s) => {
      s.write('HTTP/1.1 200 OK\r\n\r\nGREETING FROM THE SERVER\n');
      s.on('data', (d) => s.write(d));
    });
    try {
      const socket = await dial({ host: 'service.test', port: 4000, tls: false }, { proxy: proxy.url });
      const greeting = await new Promise<string>((resolve) =>
        socket.once('data', (d: Buffer) => resolve(d.toString())),
      );
      assert.equal(greeting, 'GREETING FROM THE SERVER\n');
      socket.write('ping\n');
      assert.equal(
        await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString()))),
        'ping\n',
      );
      socket.destroy();
      assert.equal(proxy.heads[0]?.target, 'service.test:4000');
    } finally {
      await proxy.stop();
    }
  });

  test('407 then close: credentials are sent on a new connection', async () => {
    let connections = 0;
    const proxy = await startScriptedProxy((s, head, rest) => {
      connections++;
      const auth = head.headers.find(([k]) => k.toLowerCase() === 'proxy-authorization')?.[1];
      if (auth !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        s.end(
          answer('407 Proxy Authentication Required', [
            'Proxy-Authenticate: Basic realm="x"',
            'Connection: close',
          ]),
        );
        return;
      }
      const t = targetOf(head);
      s.write('HTTP/1.1 200 OK\r\n\r\n');
      relay(s, t.host, t.port, rest);
    });
    try {
      const ws = await connect(echo.url, { proxy: proxy.url, proxyAuth: 'u:p' });
      assert.equal(await echoOnce(ws, 'again'), 'again');
      ws.close();
      assert.equal(connections, 2);
    } finally {
      await proxy.stop();
    }
  });

  test('a scheme wsvia cannot answer: PROXY_AUTH_REQUIRED naming it', async () => {
    const proxy = await startScriptedProxy((s) =>
      s.end(answer('407 Proxy Authentication Required', ['Proxy-Authenticate: Kerberos-Only'])),
    );
    try {
      await assert.rejects(
        connect(echo.url, { proxy: proxy.url, proxyAuth: 'u:p' }),
        expectCode('PROXY_AUTH_REQUIRED', (e) => assert.match(e.message, /Kerberos-Only.*cannot answer/)),
      );
    } finally {
      await proxy.stop();
    }
  });
});

describe('intercepting gateways and the TLS hop', () => {
  test("the McAfee case: 200 to CONNECT, then plain HTTP '500 handshakefailed' instead of a ServerHello", async () => {
    const proxy = await startScriptedProxy((s) => {
      s.write('HTTP/1.0 200 Connection established\r\n\r\n');
      s.once('data', () =>
        s.end(
          'HTTP/1.0 500 handshakefailed\r\nVia: 1.0 10.0.0.1 (McAfee Web Gateway 7.8.2)\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html><body>SSL handshake failed</body></html>',
        ),
      );
    });
    try {
      await assert.rejects(
        connect('wss://echo.test/', { proxy: proxy.url }),
        expectCode('TLS_NOT_SPOKEN', (e) => {
          assert.equal(e.hop, 'tunnel');
          assert.equal(e.answer?.status, 500);
          assert.match(
            e.message,
            /granted the tunnel, then answered the TLS handshake for echo\.test:443 in plain HTTP: "500 handshakefailed"/,
          );
          assert.match(e.message, /McAfee Web Gateway/);
          assert.match(e.hint ?? '', /inspects TLS/);
          assert.doesNotMatch(e.message, /wrong version number/);
        }),
      );
    } finally {
      await proxy.stop();
    }
  });

  test('a TLS server that never answers the ClientHello: TLS_TIMEOUT', async () => {
    const server = net.createServer(() => {}).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        connect(`wss://127.0.0.1:${port}/`, { timeouts: { tls: 300 } }),
        expectCode('TLS_TIMEOUT'),
      );
    } finally {
      server.close();
    }
  });

  test('a certificate for another name: TLS_HOSTNAME_MISMATCH', async () => {
    const secure = await startEchoServer({ port: 0, tls: localhostCert() });
    try {
      await assert.rejects(
        connect(`wss://127.0.0.2:${secure.port}/`, { ca: localhostCert().cert }).catch((e) => {
          throw e;
        }),
        (e: unknown) =>
          e instanceof WsviaError && (e.code === 'TLS_HOSTNAME_MISMATCH' || e.code === 'CONNECTION_REFUSED'),
      );
      // servername override: verified against the name asked for.
      await assert.rejects(
        connect(secure.url, { ca: localhostCert().cert, servername: 'other.test' }),
        expectCode('TLS_HOSTNAME_MISMATCH'),
      );
    } finally {
      await secure.close();
    }
  });
});

describe('the upgrade hop', () => {
  test('a server that answers 200 to the upgrade: UPGRADE_REJECTED with the stripped-headers advice', async () => {
    const server = http.createServer((_req, res) => res.end('<h1>Welcome</h1><p>plain page</p>'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        connect(`ws://127.0.0.1:${port}/chat`),
        expectCode('UPGRADE_REJECTED', (e) => {
          assert.equal(e.hop, 'upgrade');
          assert.equal(e.answer?.status, 200);
          assert.equal(e.answer?.bodyExcerpt, 'Welcome plain page');
          assert.match(e.hint ?? '', /Upgrade and Connection headers/);
        }),
      );
    } finally {
      server.close();
    }
  });

  test('a server that never answers the upgrade: UPGRADE_TIMEOUT', async () => {
    const server = net.createServer(() => {}).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        connect(`ws://127.0.0.1:${port}/`, { timeouts: { upgrade: 300 } }),
        expectCode('UPGRADE_TIMEOUT'),
      );
    } finally {
      server.close();
    }
  });

  test('nothing listens at the target: CONNECTION_REFUSED', async () => {
    const server = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((r) => server.close(r));
    await assert.rejects(
      connect(`ws://127.0.0.1:${port}/`),
      expectCode('CONNECTION_REFUSED', (e) => assert.equal(e.hop, 'tcp')),
    );
  });

  test('subprotocols and origin reach the server', async () => {
    const server = await startEchoServer({ port: 0, protocols: ['chat.v2'] });
    try {
      const ws = await connect(server.url, {
        protocols: ['chat.v1', 'chat.v2'],
        origin: 'https://app.test',
        headers: { 'X-Trace-Id': 'abc' },
      });
      assert.equal(ws.protocol, 'chat.v2');
      ws.close();
      const h = new Map(server.received.at(-1)?.headers.map(([k, v]) => [k.toLowerCase(), v]));
      assert.equal(h.get('origin'), 'https://app.test');
      assert.equal(h.get('x-trace-id'), 'abc');
    } finally {
      await server.close();
    }
  });
});

describe('keepalive', () => {
  test('no pong by the deadline: PING_TIMEOUT and the socket ends', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: false });
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as net.AddressInfo).port;
    try {
      const ws = await connect(`ws://127.0.0.1:${port}/`, { ping: { interval: 100, timeout: 200 } });
      const err = await new Promise<WsviaError>((resolve) =>
        ws.once('error', (e) => resolve(e as WsviaError)),
      );
      assert.equal(err.code, 'PING_TIMEOUT');
      await new Promise((r) => ws.once('close', r));
    } finally {
      wss.close();
    }
  });

  test('pongs in time keep the connection open', async () => {
    const ws = await connect(echo.url, { ping: { interval: 50, timeout: 500 } });
    let errors = 0;
    ws.on('error', () => errors++);
    const started = Date.now();
    let pongs = 0;
    ws.on('pong', () => pongs++);
    // Past the pong timeout by pings answered, not by the clock alone.
    await until('pongs beyond the pong timeout', () => pongs >= 3 && Date.now() - started > 600);
    assert.equal(errors, 0);
    assert.equal(ws.readyState, ws.OPEN);
    assert.equal(await echoOnce(ws, 'alive'), 'alive');
    ws.close();
  });
});
