/**
 * SNI passthrough over the shared raw relay, through the real gateway: half-close, a reset passed on as a reset in
 * both directions, the idle sweep, the admission limits, and one access-log line per connection. The backend is a
 * plain TCP server: after the ClientHello, passthrough carries bytes it never looks at. The same suite runs with
 * the JavaScript relay and with the native splice(2) relay that `auto` (the gateway's default) picks where it loads.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { after, before, describe, it, mock } from 'node:test';
import { howItEnds } from '../helpers/endings.js';
import { until } from '../helpers/eventually.js';
import { RELAYS, relayOptions } from '../helpers/relays.js';
import { spliceSupport, splicedOpen } from '../../src/serve/splice-relay.js';
import { startGateway, type TestGateway } from './peers.js';

/** A real ClientHello naming `servername`, captured from Node's TLS client. */
async function clientHello(servername: string): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = tls.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    servername,
  });
  client.on('error', () => {});
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  const [hello] = (await once(socket, 'data')) as [Buffer];
  socket.destroy();
  client.destroy();
  server.close();
  return hello;
}

interface Backend {
  readonly port: number;
  /** Accepted connections, in order, each with what it received so far. */
  readonly conns: { socket: net.Socket; received: Buffer[] }[];
  close(): Promise<void>;
}

async function startBackend(): Promise<Backend> {
  const conns: Backend['conns'] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const c = { socket, received: [] as Buffer[] };
    conns.push(c);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => c.received.push(d));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    close: () =>
      new Promise((resolve) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Opens a passthrough connection: the ClientHello then `first`; resolves once the backend has both. */
async function openPassthrough(
  gw: TestGateway,
  backend: Backend,
  hello: Buffer,
  first: string,
): Promise<{ client: net.Socket; far: Backend['conns'][number] }> {
  const index = backend.conns.length;
  const client = net.connect({ port: gw.tlsPort as number, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => {});
  client.write(Buffer.concat([hello, Buffer.from(first)]));
  await until('the backend connection', () => backend.conns.length > index);
  const far = backend.conns[index] as Backend['conns'][number];
  const want = hello.length + first.length;
  await until('the first bytes at the backend', () => Buffer.concat(far.received).length >= want);
  return { client, far };
}

for (const relay of RELAYS)
  describe(
    `gateway: SNI passthrough over the shared relay (${relay})`,
    { timeout: 30_000, ...relayOptions(relay) },
    () => {
      let backend: Backend;
      let gw: TestGateway;
      let hello: Buffer;
      before(async () => {
        hello = await clientHello('raw.test');
        backend = await startBackend();
        gw = await startGateway(
          `
tls-listen: 127.0.0.1:0
sni: [{ name: raw.test, backend: 127.0.0.1:${backend.port} }]
idle-timeout: 0.4
max-per-client: 2
`,
          { relay: relay === 'splice' ? 'auto' : 'js' },
        );
      });

      it(`relays passthrough connections with the ${relay} relay`, async () => {
        assert.equal(gw.gateway.sniRelay, relay);
        // The test's own connect, and with the JavaScript relay the gateway's to the backend; the native relay's
        // backend is dialed by the addon, with no socket object.
        const connects = mock.method(net.Socket.prototype, 'connect');
        const { client, far } = await openPassthrough(gw, backend, hello, 'ping');
        assert.equal(connects.mock.callCount(), relay === 'splice' ? 1 : 2);
        connects.mock.restore();
        if (relay === 'splice')
          await until('the connection handed to the native relay', () => splicedOpen() > 0);
        const got: Buffer[] = [];
        client.on('data', (d: Buffer) => got.push(d));
        far.socket.write('pong');
        await until('the answer at the client', () => Buffer.concat(got).toString() === 'pong');
        client.write('more');
        const want = hello.length + 'pingmore'.length;
        await until('the second write at the backend', () => Buffer.concat(far.received).length >= want);
        client.destroy();
        far.socket.destroy();
        await until('the connection logged', () => sniLines().length >= 1);
      });
      after(async () => {
        await gw.gateway.close();
        await backend.close();
      });

      it('carries the ClientHello and the bytes after it untouched', async () => {
        const { client, far } = await openPassthrough(gw, backend, hello, 'after the hello');
        assert.deepEqual(Buffer.concat(far.received), Buffer.concat([hello, Buffer.from('after the hello')]));
        const farEnding = howItEnds(far.socket);
        client.end();
        assert.equal(await farEnding, 'FIN');
        far.socket.end();
        await until('closed', () => client.closed);
      });

      it('passes a client FIN on as a FIN and still delivers the answer after it (half-close)', async () => {
        const { client, far } = await openPassthrough(gw, backend, hello, 'question');
        const farEnding = howItEnds(far.socket);
        client.end();
        assert.equal(await farEnding, 'FIN');
        const answer: Buffer[] = [];
        client.on('data', (d: Buffer) => answer.push(d));
        const clientEnding = howItEnds(client);
        far.socket.end('answer after your FIN');
        assert.equal(await clientEnding, 'FIN');
        assert.equal(Buffer.concat(answer).toString(), 'answer after your FIN');
      });

      it('a backend reset reaches the client as a reset (ECONNRESET), not a FIN', async () => {
        const { client, far } = await openPassthrough(gw, backend, hello, 'x');
        const ending = howItEnds(client);
        far.socket.resetAndDestroy();
        assert.equal(await ending, 'ECONNRESET');
      });

      it('a client reset reaches the backend as a reset', async () => {
        const { client, far } = await openPassthrough(gw, backend, hello, 'x');
        const ending = howItEnds(far.socket);
        client.resetAndDestroy();
        assert.equal(await ending, 'ECONNRESET');
      });

      it('cuts a silent connection after limits.idleTimeout', async () => {
        const { client } = await openPassthrough(gw, backend, hello, 'x');
        const started = Date.now();
        assert.equal(await howItEnds(client), 'ECONNRESET');
        assert.ok(Date.now() - started >= 300, `cut after ${Date.now() - started} ms, the limit is 400 ms`);
      });

      it('counts against maxPerClient: a third connection from the address is refused, and served once one ends', async () => {
        const a = await openPassthrough(gw, backend, hello, 'a');
        const b = await openPassthrough(gw, backend, hello, 'b');
        const before = backend.conns.length;
        const refused = net.connect({ port: gw.tlsPort as number, host: '127.0.0.1' });
        const ending = howItEnds(refused);
        refused.write(hello);
        assert.equal(await ending, 'ECONNRESET');
        assert.equal(gw.gateway.metrics.refused.get({ reason: 'per_client' }), 1);
        const line = gw.records.find((r) => r['error'] === 'per_client');
        assert.equal(line?.['close'], 'refused', 'the refusal is in the access log');
        assert.equal(line?.['status'], null);
        assert.equal(backend.conns.length, before, 'the refused connection never reached the backend');
        a.client.destroy();
        a.far.socket.destroy();
        await until('the slot released', () => gw.gateway.metrics.connections.get({}) < 2);
        const c = await openPassthrough(gw, backend, hello, 'c');
        for (const x of [b, c]) {
          x.client.destroy();
          x.far.socket.destroy();
        }
      });

      it('writes exactly one access-log line per connection, with what ended it', async () => {
        await until(
          'every connection logged',
          () => gw.gateway.openWebSockets === 0 && sniLines().length >= 8,
        );
        const closes = sniLines().map((r) => r['close']);
        assert.ok(closes.includes('client_closed'), JSON.stringify(closes));
        assert.ok(closes.includes('upstream_reset'), JSON.stringify(closes));
        assert.ok(closes.includes('client_reset'), JSON.stringify(closes));
        assert.ok(closes.includes('idle_timeout'), JSON.stringify(closes));
        const first = sniLines().find((r) => r['bytes_down'] === 0 && r['close'] === 'client_closed');
        assert.equal(first?.['bytes_up'], hello.length + 'after the hello'.length);
      });

      function sniLines(): Record<string, unknown>[] {
        return gw.records.filter((r) => r['method'] === null);
      }
    },
  );

describe('wsvia gateway: the SNI relay it starts with', { timeout: 30_000 }, () => {
  const MAIN = path.resolve('dist/src/cli/main.js');

  /** Starts `wsvia gateway` with one SNI route; resolves with its TLS port and its stderr so far. */
  async function startCli(
    backendPort: number,
    env: NodeJS.ProcessEnv,
    extra: readonly string[] = [],
  ): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'gateway',
        '--tls-listen',
        '127.0.0.1:0',
        '--sni',
        `raw.test=127.0.0.1:${backendPort}`,
        ...extra,
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    (child.stderr as NodeJS.ReadableStream).on('data', (d: Buffer) => (err += d.toString()));
    await until(
      'the listening and relay lines',
      () => /sni relay: .*\n/.test(err) || child.exitCode !== null,
    );
    const m = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(err);
    assert.ok(m, err);
    return { child, port: Number(m[1]), stderr: () => err };
  }

  it('falls back to the JavaScript relay under WSVIA_SPLICE=off, and still carries bytes both ways and resets', async () => {
    const hello = await clientHello('raw.test');
    const backend = await startBackend();
    const gw = await startCli(backend.port, { WSVIA_SPLICE: 'off' });
    try {
      assert.match(gw.stderr(), /wsvia gateway sni relay: js \(turned off by WSVIA_SPLICE=off\)/);
      const client = net.connect({ port: gw.port, host: '127.0.0.1' });
      client.on('error', () => {});
      client.write(Buffer.concat([hello, Buffer.from('up')]));
      await until(
        'the bytes at the backend',
        () => Buffer.concat(backend.conns[0]?.received ?? []).length >= hello.length + 2,
      );
      const got: Buffer[] = [];
      client.on('data', (d: Buffer) => got.push(d));
      const far = (backend.conns[0] as Backend['conns'][number]).socket;
      far.write('down');
      await until('the answer at the client', () => Buffer.concat(got).toString() === 'down');
      const ending = howItEnds(client);
      far.resetAndDestroy();
      assert.equal(await ending, 'ECONNRESET');
    } finally {
      gw.child.kill('SIGKILL');
      await backend.close();
    }
  });

  it('says which relay runs by default: splice where the native relay loads', async () => {
    const backend = await startBackend();
    const gw = await startCli(backend.port, {});
    try {
      const support = spliceSupport();
      if (support.available)
        assert.match(gw.stderr(), /wsvia gateway sni relay: splice \(zero-copy splice\(2\), /);
      else assert.match(gw.stderr(), /wsvia gateway sni relay: js \(/);
    } finally {
      gw.child.kill('SIGKILL');
      await backend.close();
    }
  });

  it('--relay js relays passthrough in JavaScript too, where the native relay would load', async () => {
    const backend = await startBackend();
    const gw = await startCli(backend.port, {}, ['--relay', 'js']);
    try {
      assert.match(gw.stderr(), /wsvia gateway sni relay: js \(/);
      assert.doesNotMatch(gw.stderr(), /sni relay: splice/);
    } finally {
      gw.child.kill('SIGKILL');
      await backend.close();
    }
  });
});
