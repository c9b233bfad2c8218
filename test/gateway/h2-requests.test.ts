/**
 * Ordinary HTTP/2 requests on the TLS listener (ALPN h2) are proxied to http:// and https:// upstreams over
 * HTTP/1.1: :authority becomes Host, forwarding headers are added, bodies stream both ways.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { once } from 'node:events';
import http2 from 'node:http2';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from './peers.js';

const run = promisify(execFile);

interface Answer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One request on `session`; `body` chunks are written one by one (no content-length unless given). */
async function request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: readonly Buffer[],
): Promise<Answer> {
  const stream = session.request(headers, { endStream: body === undefined });
  const answer = new Promise<Answer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let head: http2.IncomingHttpHeaders = {};
    stream.once('response', (h) => (head = h));
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.once('end', () => resolve({ headers: head, body: Buffer.concat(chunks) }));
    stream.once('error', reject);
  });
  if (body) {
    for (const chunk of body) {
      if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r));
    }
    stream.end();
  }
  return answer;
}

describe('gateway TLS listener: plain HTTP/2 requests', { timeout: 60_000 }, () => {
  let cert: KeyPair;
  let upCert: KeyPair;
  let up: Upstream;
  let secureUp: Upstream;
  let gw: TestGateway;
  let dir: string;
  let session: http2.ClientHttp2Session;
  before(async () => {
    dir = tempDir();
    cert = makeSelfSigned('localhost');
    upCert = makeSelfSigned('localhost');
    fs.writeFileSync(path.join(dir, 'cert.pem'), cert.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), cert.key);
    fs.writeFileSync(path.join(dir, 'up-ca.pem'), upCert.cert);
    up = await startUpstream('plain');
    secureUp = await startUpstream('secure', { tls: upCert });
    gw = await startGateway(`
tls-listen: 127.0.0.1:0
tls-cert: ${dir}/cert.pem
tls-key: ${dir}/key.pem
upstream-ca: ${dir}/up-ca.pem
routes:
  - { path: /app, upstream: http://127.0.0.1:${up.port} }
  - { path: /secure, upstream: https://localhost:${secureUp.port} }
`);
    session = http2.connect(`https://localhost:${gw.tlsPort}`, { ca: cert.cert });
    session.on('error', () => {});
  });
  after(async () => {
    session.close();
    await gw.gateway.close();
    await up.close();
    await secureUp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('GET to an http:// route: 200 with the upstream headers; Host from :authority, forwarding headers added', async () => {
    const res = await request(session, {
      ':method': 'GET',
      ':path': '/app/page?q=1',
      ':authority': 'app.example',
      cookie: ['a=1', 'b=2'],
    });
    assert.equal(res.headers[':status'], 200);
    assert.equal(res.headers['x-upstream'], 'plain');
    assert.equal(res.headers['connection'], undefined);
    const report = JSON.parse(res.body.toString()) as { url: string; headers: Record<string, string> };
    assert.equal(report.url, '/app/page?q=1');
    assert.equal(report.headers['host'], 'app.example');
    assert.equal(report.headers['cookie'], 'a=1; b=2');
    assert.equal(report.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(report.headers['x-forwarded-proto'], 'https');
    assert.equal(report.headers['x-forwarded-host'], 'app.example');
    const logged = (r: Record<string, unknown>): boolean => String(r['target']).endsWith('/app/page');
    await until('the access log line', () => gw.records.some(logged));
    const line = gw.records.find(logged);
    assert.equal(line?.['method'], 'GET');
    assert.equal(line?.['status'], 200);
  });

  it('POST without a length streams a 1 MiB body up (chunked) and the echo back down, byte for byte', async () => {
    const chunks = Array.from({ length: 16 }, () => crypto.randomBytes(64 * 1024));
    const res = await request(session, { ':method': 'POST', ':path': '/app/echo' }, chunks);
    assert.equal(res.headers[':status'], 200);
    assert.equal(res.headers['transfer-encoding'], undefined);
    assert.ok(res.body.equals(Buffer.concat(chunks)), 'the body came back unchanged');
  });

  it('POST with a content-length to an https:// route', async () => {
    const body = Buffer.from('hello over h2 to a TLS upstream');
    const res = await request(
      session,
      { ':method': 'POST', ':path': '/secure/echo', 'content-length': String(body.length) },
      [body],
    );
    assert.equal(res.headers[':status'], 200);
    assert.equal(res.headers['x-upstream'], 'secure');
    assert.equal(res.body.toString(), body.toString());
  });

  it('a client that sends Expect: 100-continue gets the 100 and then its body echoed', async () => {
    const stream = session.request(
      { ':method': 'POST', ':path': '/app/echo', expect: '100-continue' },
      { endStream: false },
    );
    await once(stream, 'continue');
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.end('after the go-ahead');
    await once(stream, 'end');
    assert.equal(Buffer.concat(chunks).toString(), 'after the go-ahead');
  });

  it('a response complete before the upload ends closes the stream (NO_ERROR) instead of leaving it open', async () => {
    // The upstream answers a PUT at once, without reading its body; the client has not finished sending.
    const stream = session.request({ ':method': 'PUT', ':path': '/app/early' }, { endStream: false });
    stream.on('error', () => {});
    stream.write(Buffer.alloc(1024));
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 200);
    await once(stream, 'close');
    assert.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
    assert.equal((JSON.parse(Buffer.concat(chunks).toString()) as { url: string }).url, '/app/early');
  });

  it('curl (nghttp2) POSTs a file over h2 and gets it back; by IP address without SNI too', async () => {
    const file = path.join(dir, 'upload.bin');
    const body = crypto.randomBytes(300 * 1024);
    fs.writeFileSync(file, body);
    const out = path.join(dir, 'download.bin');
    const { stdout } = await run('curl', [
      ...['-sS', '--http2', '--cacert', path.join(dir, 'cert.pem'), '-w', '%{http_version} %{http_code}'],
      ...['--resolve', `localhost:${gw.tlsPort}:127.0.0.1`, '--data-binary', `@${file}`, '-o', out],
      `https://localhost:${gw.tlsPort}/app/upload`,
    ]);
    assert.equal(stdout, '2 200');
    assert.ok(fs.readFileSync(out).equals(body), 'the upload came back unchanged');
    const byIp = await run('curl', [
      ...['-sS', '--http2', '--insecure', '-w', '\n%{http_version} %{http_code}'],
      `https://127.0.0.1:${gw.tlsPort}/app/by-ip`,
    ]);
    assert.match(byIp.stdout, /"url":"\/app\/by-ip"[\s\S]*\n2 200$/);
  });

  it('answers 404 for a path without a route, and 405 for a plain CONNECT, on the same session', async () => {
    const missing = await request(session, { ':method': 'GET', ':path': '/nowhere' });
    assert.equal(missing.headers[':status'], 404);
    const connect = await request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    assert.equal(connect.headers[':status'], 405);
    const again = await request(session, { ':method': 'GET', ':path': '/app/' });
    assert.equal(again.headers[':status'], 200);
  });
});
