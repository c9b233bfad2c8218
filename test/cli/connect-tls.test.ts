/**
 * `wsvia connect` with client certificates (for the server: --cert/--key; for an https:// proxy:
 * --proxy-cert/--proxy-key) and `--proxy-basic` sending its credentials with the first CONNECT, against real
 * servers that verify them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { EXIT_CODES } from '../../src/errors.js';
import { RequestHeadReader } from '../../src/protocol/head.js';
import { getHeader } from '../../src/protocol/headers.js';
import { localhostCert } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/process.js';
import { relay, startScriptedProxy, targetOf } from '../helpers/scripted-proxy.js';

const STACK = /\n\s+at |internal error/;

let echo: EchoServer;
let client: KeyPair;
let files: { ca: string; cert: string; key: string };
before(async () => {
  echo = await startEchoServer({ port: 0 });
  client = makeSelfSigned('wsvia-test-client', ['DNS:wsvia-test-client']);
  const dir = tempDir();
  files = {
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'client.pem'),
    key: path.join(dir, 'client.key'),
  };
  fs.writeFileSync(files.ca, localhostCert().cert);
  fs.writeFileSync(files.cert, client.cert);
  fs.writeFileSync(files.key, client.key);
});
after(() => echo.close());

/** TLS options of a server that asks every client for a certificate and accepts only the test client's. */
function verifyingClients(): tls.TlsOptions {
  return { ...localhostCert(), requestCert: true, rejectUnauthorized: true, ca: client.cert };
}

describe('wsvia connect with client certificates', () => {
  test('--cert/--key: a wss server that requires a client certificate accepts this one', async () => {
    const server = https.createServer(verifyingClients());
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) =>
      ws.on('message', (m) => ws.send(`${String(m)} from ${ws.protocol || 'mtls'}`)),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `wss://localhost:${(server.address() as net.AddressInfo).port}/`;
    try {
      const ok = await runCli([
        'connect',
        url,
        '--ca',
        files.ca,
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--send',
        'hi',
      ]);
      assert.equal(ok.code, EXIT_CODES.ok, ok.stderr);
      assert.equal(ok.stdout, 'hi from mtls\n');
      const without = await runCli(['connect', url, '--ca', files.ca, '--send', 'hi']);
      assert.notEqual(without.code, EXIT_CODES.ok, 'the server refuses a client without a certificate');
      assert.doesNotMatch(without.stderr, STACK);
      const half = await runCli(['connect', url, '--cert', files.cert]);
      assert.equal(half.code, EXIT_CODES.usage);
      assert.match(half.stderr, /--cert and --key go together/);
    } finally {
      wss.close();
      server.closeAllConnections();
      server.close();
    }
  });

  test('--proxy-cert/--proxy-key: an https:// proxy that requires a client certificate opens the tunnel', async () => {
    const seen: string[] = [];
    const proxy = tls.createServer(verifyingClients(), (socket) => {
      socket.on('error', () => {});
      const reader = new RequestHeadReader({ peer: 'test client', hop: 'server' });
      const onData = (chunk: Buffer): void => {
        const r = reader.receive(chunk);
        if (!r) return;
        socket.removeListener('data', onData);
        seen.push(`${r.head.method} ${r.head.target} from ${String(socket.getPeerCertificate().subject.CN)}`);
        socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
        const t = targetOf(r.head);
        relay(socket, t.host, t.port, r.leftover);
      };
      socket.on('data', onData);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `https://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    try {
      const r = await runCli([
        'connect',
        echo.url,
        '--proxy',
        proxyUrl,
        '--proxy-ca',
        files.ca,
        '--proxy-cert',
        files.cert,
        '--proxy-key',
        files.key,
        '--send',
        'through',
      ]);
      assert.equal(r.code, EXIT_CODES.ok, r.stderr);
      assert.equal(r.stdout, 'through\n');
      assert.deepEqual(seen, [`CONNECT ${new URL(echo.url).host} from wsvia-test-client`]);
    } finally {
      proxy.close();
    }
  });
});

describe('wsvia connect --proxy-basic', () => {
  test('the credentials go with the first CONNECT: one request, no 407', async () => {
    const expected = `Basic ${Buffer.from('alice:wonder land').toString('base64')}`;
    const proxy = await startScriptedProxy((socket, head, leftover) => {
      if (getHeader(head.headers, 'proxy-authorization') !== expected) {
        socket.end(
          'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
        );
        return;
      }
      socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
      const t = targetOf(head);
      relay(socket, t.host, t.port, leftover);
    });
    try {
      const args = ['connect', echo.url, '-x', proxy.url, '-U', 'alice:wonder land', '--send', 'hi'];
      const basic = await runCli([...args, '--proxy-basic']);
      assert.equal(basic.code, EXIT_CODES.ok, basic.stderr);
      assert.equal(basic.stdout, 'hi\n');
      assert.equal(proxy.heads.length, 1, 'one CONNECT: no 407 round trip');
      assert.equal(getHeader(proxy.heads[0]?.headers ?? [], 'proxy-authorization'), expected);
      // Without --proxy-basic the scheme is learnt from the 407 first: two requests.
      const any = await runCli(args);
      assert.equal(any.code, EXIT_CODES.ok, any.stderr);
      assert.equal(proxy.heads.length, 3);
      assert.equal(getHeader(proxy.heads[1]?.headers ?? [], 'proxy-authorization'), undefined);
    } finally {
      await proxy.stop();
    }
  });

  test('refused credentials on the first CONNECT are reported as such (exit 4), not retried', async () => {
    const proxy = await startScriptedProxy((socket) =>
      socket.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
      ),
    );
    try {
      const r = await runCli([
        'connect',
        echo.url,
        '-x',
        proxy.url,
        '-U',
        'alice:wrong',
        '--proxy-basic',
        '--send',
        'x',
      ]);
      assert.equal(r.code, EXIT_CODES.proxyAuth, r.stderr);
      assert.match(r.stderr, /PROXY_AUTH_REQUIRED/);
      assert.equal(proxy.heads.length, 1);
    } finally {
      await proxy.stop();
    }
  });
});
