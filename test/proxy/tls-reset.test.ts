/**
 * Resets through a TLS listener and through an https:// parent: `resetAndDestroy()` throws on a TLSSocket
 * (ERR_INVALID_HANDLE_TYPE), and thrown from a close handler it took the whole proxy down. A reset must reach the
 * other end as a reset (ECONNRESET), and the proxy must go on serving.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { parseProxyUrl } from '../../src/route/proxy-url.js';
import { localhostCert } from '../helpers/certs.js';
import { tempDir } from '../helpers/process.js';
import { until } from '../helpers/eventually.js';
import { howItEnds } from '../helpers/endings.js';
import {
  connectRequest,
  readAll,
  request,
  startProxy,
  startTcpEcho,
  type RunningWsviaProxy,
  type TcpPeer,
} from '../helpers/wsvia-proxy.js';

/** A destination that resets each connection once its first byte arrives. */
async function startResetter(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Opens a CONNECT tunnel through a TLS proxy; `raw` is the TCP socket under the TLS one (to reset it). */
async function tlsTunnel(port: number, target: string): Promise<{ secure: tls.TLSSocket; raw: net.Socket }> {
  const raw = net.connect({ port, host: '127.0.0.1' });
  raw.on('error', () => {});
  const secure = tls.connect({ socket: raw, ca: localhostCert().cert, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  secure.write(connectRequest(target));
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const chunk = await new Promise<Buffer>((r) => secure.once('data', (d: Buffer) => r(d)));
    head += chunk.toString('latin1');
  }
  assert.match(head, /^HTTP\/1\.1 200 /);
  secure.pause();
  return { secure, raw };
}

describe(
  'wsvia proxy --tls-cert: a reset passes through the TLS listener as a reset',
  { timeout: 20_000 },
  () => {
    let proxy: RunningWsviaProxy;
    let resetter: Awaited<ReturnType<typeof startResetter>>;
    let echo: TcpPeer;
    before(async () => {
      proxy = await startProxy({ tls: localhostCert() });
      resetter = await startResetter();
      echo = await startTcpEcho();
    });
    after(async () => {
      await proxy.close();
      await resetter.close();
      await echo.close();
    });

    it('a destination that resets: the client sees ECONNRESET and the proxy serves the next tunnel', async () => {
      const a = await tlsTunnel(proxy.port, `127.0.0.1:${resetter.port}`);
      const ending = howItEnds(a.secure);
      a.secure.write('x');
      assert.equal(await ending, 'ECONNRESET');
      const b = await tlsTunnel(proxy.port, `127.0.0.1:${echo.port}`);
      b.secure.end('still here');
      assert.equal((await readAll(b.secure as unknown as net.Socket)).toString(), 'still here');
      await until('tunnels released', () => proxy.server.active === 0);
      assert.equal(proxy.server.metrics.closes.get({ reason: 'upstream_reset' }), 1);
    });

    it('a client that resets: the destination sees ECONNRESET', async () => {
      const a = await tlsTunnel(proxy.port, `127.0.0.1:${echo.port}`);
      a.secure.write('x');
      await until('the echo connection', () => echo.sockets.some((s) => !s.destroyed && s.bytesRead > 0));
      const upstream = echo.sockets.find((s) => !s.destroyed && s.bytesRead > 0) as net.Socket;
      const ending = howItEnds(upstream);
      a.raw.resetAndDestroy();
      assert.equal(await ending, 'ECONNRESET');
      await until('tunnels released', () => proxy.server.active === 0);
    });
  },
);

describe(
  'wsvia proxy --upstream https://: a reset passes through the parent as a reset',
  { timeout: 20_000 },
  () => {
    let parent: RunningWsviaProxy;
    let child: RunningWsviaProxy;
    let resetter: Awaited<ReturnType<typeof startResetter>>;
    let echo: TcpPeer;
    before(async () => {
      parent = await startProxy({ tls: localhostCert() });
      child = await startProxy({
        upstream: parseProxyUrl(`https://127.0.0.1:${parent.port}`),
        upstreamCa: localhostCert().cert,
      });
      resetter = await startResetter();
      echo = await startTcpEcho();
    });
    after(async () => {
      await child.close();
      await parent.close();
      await resetter.close();
      await echo.close();
    });

    it('a destination that resets: the client sees ECONNRESET and both proxies serve the next tunnel', async () => {
      const a = await request(child.port, connectRequest(`127.0.0.1:${resetter.port}`));
      assert.equal(a.head.status, 200);
      const ending = howItEnds(a.socket);
      a.socket.write('x');
      assert.equal(await ending, 'ECONNRESET');
      const b = await request(child.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(b.head.status, 200);
      b.socket.end('still here');
      assert.equal((await readAll(b.socket, b.rest)).toString(), 'still here');
      await until('tunnels released', () => child.server.active === 0 && parent.server.active === 0);
    });

    it('a client that resets: the destination sees ECONNRESET through the parent', async () => {
      const a = await request(child.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(a.head.status, 200);
      a.socket.write('x');
      await until('the echo connection', () => echo.sockets.some((s) => !s.destroyed && s.bytesRead > 0));
      const upstream = echo.sockets.find((s) => !s.destroyed && s.bytesRead > 0) as net.Socket;
      const ending = howItEnds(upstream);
      a.socket.resetAndDestroy();
      assert.equal(await ending, 'ECONNRESET');
      await until('tunnels released', () => child.server.active === 0 && parent.server.active === 0);
      assert.equal(child.server.metrics.closes.get({ reason: 'client_reset' }), 1);
    });
  },
);

describe('wsvia proxy --tls-cert as a process', { timeout: 30_000 }, () => {
  it('survives a destination that resets a tunnel, and serves the next one', async () => {
    const dir = tempDir();
    const resetter = await startResetter();
    const echo = await startTcpEcho();
    fs.writeFileSync(path.join(dir, 'cert.pem'), localhostCert().cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), localhostCert().key);
    const args = ['proxy', '--port', '0', '--tls-cert', path.join(dir, 'cert.pem')];
    args.push('--tls-key', path.join(dir, 'key.pem'), '--allow', '127.0.0.1', '--allow-ports', '*');
    const child = spawn(process.execPath, [path.resolve('dist/src/cli/main.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let exit: number | null | undefined;
    child.once('exit', (code) => (exit = code));
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await until('the listening line', () => /listening on https:\/\/127\.0\.0\.1:\d+/.test(out));
      const port = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
      const a = await tlsTunnel(port, `127.0.0.1:${resetter.port}`);
      const ending = howItEnds(a.secure);
      a.secure.write('x');
      assert.equal(await ending, 'ECONNRESET');
      const b = await tlsTunnel(port, `127.0.0.1:${echo.port}`);
      b.secure.end('still here');
      assert.equal((await readAll(b.secure as unknown as net.Socket)).toString(), 'still here');
      assert.equal(exit, undefined, `the proxy exited:\n${out}`);
    } finally {
      child.kill('SIGKILL');
      await resetter.close();
      await echo.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
