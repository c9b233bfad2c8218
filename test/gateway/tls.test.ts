import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';
import {
  closed,
  echo,
  openWs,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
} from './peers.js';

/** A masked client frame (RFC 6455 §5.3), for the raw HTTP/2 stream. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([9, 8, 7, 6]);
  const body = Buffer.from(payload.map((b, i) => b ^ (mask[i & 3] as number)));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, body]);
}

/** Reads unmasked server frames off a stream: [opcode, payload] for each, in order. */
function frameReader(stream: http2.ClientHttp2Stream): () => Promise<[number, Buffer]> {
  let buf = Buffer.alloc(0);
  const waiting: (() => void)[] = [];
  stream.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiting.splice(0).forEach((w) => w());
  });
  return async () => {
    for (let i = 0; i < 200; i++) {
      if (buf.length >= 2) {
        let len = (buf[1] as number) & 0x7f;
        let off = 2;
        if (len === 126) {
          len = buf.readUInt16BE(2);
          off = 4;
        }
        if (buf.length >= off + len) {
          const out: [number, Buffer] = [(buf[0] as number) & 0x0f, buf.subarray(off, off + len)];
          buf = buf.subarray(off + len);
          return out;
        }
      }
      await new Promise<void>((r) => waiting.push(r));
    }
    throw new Error('no frame');
  };
}

describe('gateway: TLS termination, HTTP/2 WebSockets (RFC 8441), SNI passthrough', () => {
  let gwCert: KeyPair;
  let backendCert: KeyPair;
  let up: Upstream;
  let backend: Upstream;
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    dir = tempDir();
    gwCert = makeSelfSigned('localhost');
    backendCert = makeSelfSigned('backend.test', ['DNS:backend.test', 'DNS:a.backend.test']);
    fs.writeFileSync(path.join(dir, 'cert.pem'), gwCert.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), gwCert.key);
    up = await startUpstream('plain-upstream');
    backend = await startUpstream('tls-backend', { tls: backendCert });
    gw = await startGateway(`
tls-listen: 127.0.0.1:0
tls-cert: ${dir}/cert.pem
tls-key: ${dir}/key.pem
routes: [{ path: /, upstream: ${up.url} }]
sni:
  - { name: backend.test, backend: 127.0.0.1:${backend.port} }
  - { name: '*.backend.test', backend: 127.0.0.1:${backend.port} }
`);
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('terminates TLS for wss:// over HTTP/1.1', async () => {
    const { ws, report } = await openWs(`wss://127.0.0.1:${gw.tlsPort}/secure?x=1`, {
      ca: gwCert.cert,
      servername: 'localhost',
    });
    assert.equal(report['name'], 'plain-upstream');
    assert.equal((report['headers'] as Record<string, string>)['x-forwarded-proto'], 'https');
    assert.equal((report['headers'] as Record<string, string>)['x-forwarded-for'], '127.0.0.1');
    assert.equal((await echo(ws, 'over tls')).toString(), 'over tls');
    ws.close();
    await closed(ws);
  });

  it('accepts an RFC 8441 extended CONNECT over HTTP/2 and bridges it to an HTTP/1.1 upgrade', async () => {
    const session = http2.connect(`https://127.0.0.1:${gw.tlsPort}`, {
      ca: gwCert.cert,
      servername: 'localhost',
    });
    try {
      const settings = await new Promise<http2.Settings>((resolve) =>
        session.once('remoteSettings', resolve),
      );
      assert.equal(settings.enableConnectProtocol, true);
      const stream = session.request({
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'https',
        ':path': '/h2/chat?room=1',
        ':authority': `localhost:${gw.tlsPort}`,
        'sec-websocket-version': '13',
        'sec-websocket-protocol': 'chat.v2',
        origin: 'https://localhost',
      });
      const next = frameReader(stream);
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
        stream.once('response', resolve),
      );
      assert.equal(headers[':status'], 200);
      assert.equal(headers['sec-websocket-protocol'], 'chat.v2');
      const [op, payload] = await next();
      assert.equal(op, 1);
      const report = JSON.parse(payload.toString()) as {
        name: string;
        url: string;
        headers: Record<string, string>;
      };
      assert.equal(report.name, 'plain-upstream');
      assert.equal(report.url, '/h2/chat?room=1');
      assert.equal(report.headers['upgrade'], 'websocket');
      stream.write(clientFrame(1, Buffer.from('hello h2')));
      const [op2, echoed] = await next();
      assert.equal(op2, 1);
      assert.equal(echoed.toString(), 'hello h2');
      stream.write(clientFrame(8, Buffer.from([0x03, 0xe8])));
      const [op3] = await next();
      assert.equal(op3, 8);
      stream.close();
      const h2Line = (r: Record<string, unknown>): boolean =>
        r['method'] === 'CONNECT' && r['status'] === 200;
      await until('the HTTP/2 WebSocket logged', () => gw.records.some(h2Line));
      const line = gw.records.find(h2Line);
      assert.equal(line?.['target'], `${up.url}/h2/chat`);
      assert.match(line?.['client'] as string, /^127\.0\.0\.1:\d+$/);
    } finally {
      session.close();
    }
  });

  it('serves a new certificate after a reload, for new connections', async () => {
    const next = makeSelfSigned('localhost', ['DNS:localhost']);
    fs.writeFileSync(path.join(dir, 'cert.pem'), next.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), next.key);
    gw.gateway.reload(gw.gateway.snapshot().config);
    const { ws, response } = await openWs(`wss://127.0.0.1:${gw.tlsPort}/`, {
      ca: next.cert,
      servername: 'localhost',
    });
    const cert = (response.socket as tls.TLSSocket).getPeerCertificate();
    assert.equal(cert.fingerprint256, new crypto.X509Certificate(next.cert).fingerprint256);
    ws.close();
    await closed(ws);
  });

  it('passes a matching server name through undecrypted: the client sees the backend certificate', async () => {
    for (const name of ['backend.test', 'a.backend.test']) {
      const { ws, report, response } = await openWs(`wss://127.0.0.1:${gw.tlsPort}/`, {
        ca: backendCert.cert,
        servername: name,
      });
      const cert = (response.socket as tls.TLSSocket).getPeerCertificate();
      assert.equal(cert.subject.CN, 'backend.test');
      assert.equal(report['name'], 'tls-backend');
      // The gateway did not terminate: no forwarding headers were added.
      assert.equal((report['headers'] as Record<string, string>)['x-forwarded-for'], undefined);
      ws.close();
      await closed(ws);
    }
  });
});

describe('gateway: a passthrough-only TLS listener', () => {
  let backendCert: KeyPair;
  let backend: Upstream;
  let gw: TestGateway;
  before(async () => {
    backendCert = makeSelfSigned('only.test', ['DNS:only.test']);
    backend = await startUpstream('only', { tls: backendCert });
    gw = await startGateway(`
tls-listen: 127.0.0.1:0
sni: [{ name: only.test, backend: 127.0.0.1:${backend.port} }]
`);
  });
  after(async () => {
    await gw.gateway.close();
    await backend.close();
  });

  it('routes by server name and resets unknown names', async () => {
    const { ws, report } = await openWs(`wss://127.0.0.1:${gw.tlsPort}/`, {
      ca: backendCert.cert,
      servername: 'only.test',
    });
    assert.equal(report['name'], 'only');
    ws.close();
    await closed(ws);
    await assert.rejects(
      openWs(`wss://127.0.0.1:${gw.tlsPort}/`, { ca: backendCert.cert, servername: 'other.test' }),
    );
  });
});
