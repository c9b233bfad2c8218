/**
 * `wsvia proxy` connects through serve/guarded-connect.ts: every IPv6 form of a loopback address is refused, a name
 * is refused when any of its addresses is, and the connect timeout is one deadline for the whole connect (0: none),
 * through a parent proxy too.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { RequestHeadReader } from '../../src/protocol/head.js';
import { DEFAULT_POLICY, parseHostRule, parsePortList } from '../../src/route/destination.js';
import { parseProxyUrl } from '../../src/route/proxy-url.js';
import { localhostCert } from '../helpers/certs.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import {
  closed,
  connectRequest,
  errorAnswer,
  request,
  startProxy,
  startTcpEcho,
  type TcpPeer,
} from '../helpers/wsvia-proxy.js';

const ANY_PORT = { ...DEFAULT_POLICY, ports: parsePortList('*') };

describe('wsvia proxy: addresses classed by what they reach', () => {
  let echo: TcpPeer;
  before(async () => {
    echo = await startTcpEcho();
  });
  after(() => echo.close());

  it('refuses CONNECT to every IPv6 form that carries 127.0.0.1 with 403 and the rule, connecting nowhere', async () => {
    const p = await startProxy({ policy: ANY_PORT });
    after(() => p.close());
    for (const host of ['::7f00:1', '::127.0.0.1', '64:ff9b::7f00:1', '::ffff:0:7f00:1', '2002:7f00:1::']) {
      const r = await errorAnswer(p.port, connectRequest(`[${host}]:${echo.port}`));
      assert.equal(r.status, 403, host);
      assert.match(r.proxyStatus, /error=destination_ip_prohibited/, host);
      assert.match(r.rule ?? '', /a loopback address, denied by default/, host);
    }
    const a = await errorAnswer(
      p.port,
      `GET http://[64:ff9b::7f00:1]:${echo.port}/ HTTP/1.1\r\nHost: [64:ff9b::7f00:1]:${echo.port}\r\n\r\n`,
    );
    assert.equal(a.status, 403);
    assert.equal(echo.sockets.length, 0);
  });

  it('refuses 0.0.0.0 (it reaches loopback) even under --allow 0.0.0.0/0', async () => {
    const p = await startProxy({ policy: { ...ANY_PORT, allow: [parseHostRule('0.0.0.0/0')] } });
    after(() => p.close());
    const r = await errorAnswer(p.port, connectRequest(`0.0.0.0:${echo.port}`));
    assert.equal(r.status, 403);
    assert.match(r.rule ?? '', /unspecified address .* always denied/);
    assert.equal(echo.sockets.length, 0);
  });
});

describe('wsvia proxy: a name with one allowed and one denied address', () => {
  let dns: TestDnsServer;
  let echo: TcpPeer;
  before(async () => {
    dns = await startDnsServer({ 'mixed.test': ['127.0.0.2', '127.0.0.3'], 'one.test': '127.0.0.2' });
    echo = await startTcpEcho('127.0.0.2');
  });
  after(async () => {
    await echo.close();
    await dns.close();
  });

  it('is refused with the denied address named; the allowed one alone is tunnelled', async () => {
    const resolver = dns.resolver();
    const p = await startProxy({
      policy: { ...ANY_PORT, allow: [parseHostRule('127.0.0.2')] },
      lookup: (host) => resolver.resolve4(host),
    });
    after(() => p.close());
    const ok = await request(p.port, connectRequest(`one.test:${echo.port}`));
    assert.equal(ok.head.status, 200);
    ok.socket.destroy();
    const r = await errorAnswer(p.port, connectRequest(`mixed.test:${echo.port}`));
    assert.equal(r.status, 403);
    assert.match(r.rule ?? '', /mixed\.test resolves to 127\.0\.0\.3, a loopback address/);
    assert.equal(echo.sockets.length, 1);
  });
});

/**
 * An http:// or https:// parent proxy that is slow on purpose: it starts TLS `tlsDelay` ms after the TCP accept,
 * answers CONNECT `connectDelay` ms after the request, then relays to the target.
 */
async function startSlowParent(o: {
  tls: boolean;
  tlsDelay: number;
  connectDelay: number;
}): Promise<{ port: number; close(): Promise<void> }> {
  const cert = localhostCert();
  const secureContext = tls.createSecureContext({ cert: cert.cert, key: cert.key });
  const sockets = new Set<net.Socket>();
  const serve = (s: net.Socket): void => {
    const reader = new RequestHeadReader({ peer: 'child', hop: 'server' });
    const onData = (chunk: Buffer): void => {
      const r = reader.receive(chunk);
      if (!r) return;
      s.removeListener('data', onData);
      const colon = r.head.target.lastIndexOf(':');
      const host = r.head.target.slice(0, colon).replace(/^\[|\]$/g, '');
      setTimeout(() => {
        const up = net.connect({ host, port: Number(r.head.target.slice(colon + 1)) }, () => {
          s.write('HTTP/1.1 200 Connection established\r\n\r\n');
          s.pipe(up).pipe(s);
        });
        up.on('error', () => s.destroy());
      }, o.connectDelay);
    };
    s.on('data', onData);
  };
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('error', () => {});
    raw.on('close', () => sockets.delete(raw));
    if (!o.tls) return serve(raw);
    setTimeout(() => {
      const t = new tls.TLSSocket(raw, { isServer: true, secureContext });
      t.on('error', () => raw.destroy());
      serve(t);
    }, o.tlsDelay);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('wsvia proxy: --connect-timeout is one deadline, through a parent too', () => {
  let echo: TcpPeer;
  before(async () => {
    echo = await startTcpEcho();
  });
  after(() => echo.close());

  it('--connect-timeout 0 with --upstream sets no limit (a parent that answers after 300 ms)', async () => {
    const parent = await startSlowParent({ tls: false, tlsDelay: 0, connectDelay: 300 });
    const p = await startProxy({
      upstream: parseProxyUrl(`http://127.0.0.1:${parent.port}`),
      limits: { connectTimeout: 0 },
    });
    after(async () => {
      await p.close();
      await parent.close();
    });
    const a = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(a.head.status, 200);
    a.socket.write('through the slow parent');
    const echoed = await new Promise<string>((resolve) => {
      let got = '';
      a.socket.on('data', (c: Buffer) => {
        got += c.toString();
        if (got.length >= 23) resolve(got);
      });
      a.socket.resume();
    });
    assert.equal(echoed, 'through the slow parent');
    a.socket.destroy();
    await closed(a.socket);
  });

  it('TLS and CONNECT to the parent share one budget: each under it, both over it, is a 504', async () => {
    // 350 ms to start TLS, 350 ms more to answer CONNECT: each step alone is within 500 ms, the whole is not.
    const parent = await startSlowParent({ tls: true, tlsDelay: 350, connectDelay: 350 });
    const p = await startProxy({
      upstream: parseProxyUrl(`https://127.0.0.1:${parent.port}`),
      upstreamCa: localhostCert().cert,
      limits: { connectTimeout: 500 },
    });
    after(async () => {
      await p.close();
      await parent.close();
    });
    const started = Date.now();
    const r = await errorAnswer(p.port, connectRequest(`127.0.0.1:${echo.port}`));
    const elapsed = Date.now() - started;
    assert.equal(r.status, 504, r.body);
    assert.match(r.proxyStatus, /error=connection_timeout/);
    assert.match(r.body, /within 500 ms/);
    assert.ok(elapsed >= 450 && elapsed < 1500, `answered after ${elapsed} ms`);
  });
});
