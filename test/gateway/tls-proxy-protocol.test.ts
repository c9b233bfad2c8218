/**
 * The PROXY protocol on the TLS listener: behind a load balancer the header (v1 or v2) comes before the
 * ClientHello, and the client it names is the one the upstream sees in X-Forwarded-For and the access log
 * records, over HTTP/1.1, over HTTP/2 and for SNI passthrough alike. A connection without a valid header is cut.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { formatProxyV1, formatProxyV2 } from '../../src/protocol/proxy-protocol.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from './peers.js';

type Version = 1 | 2;

/** A TCP connection to `port` that starts with a PROXY header naming `client`, as a load balancer writes it. */
async function behindBalancer(port: number, client: string, version: Version): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  const source = { address: client, port: 40_000 };
  const destination = { address: '127.0.0.1', port };
  s.write(version === 1 ? formatProxyV1(source, destination) : formatProxyV2(source, destination));
  return s;
}

/** TLS over `raw`, then one HTTP/1.1 GET; resolves with the status and the body. */
async function getOverTls(
  raw: net.Socket,
  ca: string,
  servername: string,
  target: string,
): Promise<{ status: number; body: string }> {
  const req = https.get({
    host: servername,
    path: target,
    createConnection: () => tls.connect({ socket: raw, ca, servername, ALPNProtocols: ['http/1.1'] }),
  });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let body = '';
  for await (const chunk of res) body += (chunk as Buffer).toString();
  return { status: res.statusCode ?? 0, body };
}

/** Resolves true when the server closes `s` having sent nothing back. */
function closedInSilence(s: net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('error', () => {});
    s.once('close', () => resolve(got === 0));
  });
}

describe('gateway TLS listener behind a load balancer (PROXY protocol)', { timeout: 30_000 }, () => {
  let cert: KeyPair;
  let backendCert: KeyPair;
  let up: Upstream;
  let backend: Upstream;
  let gw: TestGateway;
  let dir: string;
  let port: number;
  before(async () => {
    dir = tempDir();
    cert = makeSelfSigned('localhost');
    backendCert = makeSelfSigned('backend.test', ['DNS:backend.test']);
    fs.writeFileSync(path.join(dir, 'cert.pem'), cert.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), cert.key);
    up = await startUpstream('up');
    backend = await startUpstream('backend', { tls: backendCert });
    gw = await startGateway(`
tls-listen: 127.0.0.1:0
tls-cert: ${dir}/cert.pem
tls-key: ${dir}/key.pem
proxy-protocol: true
routes: [{ path: /, upstream: ${up.url} }]
sni: [{ name: backend.test, backend: 127.0.0.1:${backend.port} }]
`);
    port = gw.tlsPort as number;
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [version, client] of [
    [1, '203.0.113.7'],
    [2, '2001:db8::17'],
  ] as const) {
    it(`PROXY v${version} before the ClientHello: HTTP/1.1 over TLS reaches the upstream with X-Forwarded-For ${client}, and the access log names it`, async () => {
      const raw = await behindBalancer(port, client, version);
      const res = await getOverTls(raw, cert.cert, 'localhost', `/v${version}`);
      assert.equal(res.status, 200);
      const report = JSON.parse(res.body) as { headers: Record<string, string> };
      assert.equal(report.headers['x-forwarded-for'], client);
      const logged = (r: Record<string, unknown>): boolean => String(r['target']).endsWith(`/v${version}`);
      await until('the access log line', () => gw.records.some(logged));
      assert.equal(hostOf(gw.records.find(logged)?.['client']), client);
    });
  }

  it('PROXY v2 before an HTTP/2 connection: the RFC 8441 WebSocket reaches the upstream with X-Forwarded-For', async () => {
    const raw = await behindBalancer(port, '198.51.100.4', 2);
    const session = http2.connect(`https://localhost:${port}`, {
      createConnection: () =>
        tls.connect({ socket: raw, ca: cert.cert, servername: 'localhost', ALPNProtocols: ['h2'] }),
    });
    session.on('error', () => {});
    try {
      const stream = session.request({
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'https',
        ':path': '/h2',
        ':authority': `localhost:${port}`,
        'sec-websocket-version': '13',
      });
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(headers[':status'], 200);
      const [first] = (await once(stream, 'data')) as [Buffer];
      // One unmasked text frame from the upstream: its report, shorter than 64 KiB.
      const len = (first[1] as number) & 0x7f;
      const payload = first.subarray(len === 126 ? 4 : 2).toString();
      const report = JSON.parse(payload) as { headers: Record<string, string> };
      assert.equal(report.headers['x-forwarded-for'], '198.51.100.4');
      stream.close();
    } finally {
      session.close();
    }
  });

  it('PROXY v1 before a passthrough ClientHello: the backend answers and the access log names the client', async () => {
    const raw = await behindBalancer(port, '192.0.2.55', 1);
    const res = await getOverTls(raw, backendCert.cert, 'backend.test', '/through');
    assert.match(res.body, /"name":"backend"/);
    // A passthrough line: no method, no status (the gateway never decrypts it).
    const passthrough = (r: Record<string, unknown>): boolean => r['method'] === null && r['status'] === null;
    await until('the passthrough log line', () => gw.records.some(passthrough));
    assert.equal(hostOf(gw.records.find(passthrough)?.['client']), '192.0.2.55');
  });

  it('cuts a connection whose ClientHello comes without a PROXY header, and one whose header is bad', async () => {
    const direct = net.connect({ host: '127.0.0.1', port });
    const silent = closedInSilence(direct);
    // A real ClientHello with no header in front of it.
    tls.connect({ socket: direct, servername: 'localhost', ca: cert.cert }).on('error', () => {});
    assert.equal(await silent, true);

    const bad = net.connect({ host: '127.0.0.1', port });
    const badSilent = closedInSilence(bad);
    bad.write('PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n');
    assert.equal(await badSilent, true);
  });
});

/** The address of an access log's `client` (`address:port`, `[v6]:port`). */
function hostOf(client: unknown): string {
  return String(client)
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1');
}
