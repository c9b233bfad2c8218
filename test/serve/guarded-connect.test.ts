import assert from 'node:assert/strict';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { after, before, describe, it } from 'node:test';
import { isWsviaError } from '../../src/errors.js';
import {
  ANY_DESTINATION,
  DEFAULT_POLICY,
  destinationRules,
  parseHostRule,
  parsePortList,
} from '../../src/route/destination.js';
import {
  ConnectDeadline,
  DestinationDeniedError,
  guardedConnect,
  guardedDial,
} from '../../src/serve/guarded-connect.js';
import { nativeDialer, type NativeDialer } from '../../src/serve/splice-relay.js';
import { startBlackhole, type Blackhole } from '../helpers/blackhole.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { until } from '../helpers/eventually.js';
import { openFds } from '../helpers/fds.js';
import { relayOptions } from '../helpers/relays.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';

/** The error `p` rejects with (it must reject). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('it connected');
}

describe('guardedConnect', () => {
  let dns: TestDnsServer;
  let echo: TcpPeer;
  let hole: Blackhole;
  before(async () => {
    echo = await startTcpEcho('127.0.0.2');
    hole = await startBlackhole();
    // 127.0.0.4 has no listener: it refuses.
    dns = await startDnsServer({ 'two.test': ['127.0.0.4', '127.0.0.2'], 'hole.test': '127.0.0.1' });
  });
  after(async () => {
    hole.stop();
    await echo.close();
    await dns.close();
  });
  const lookup = (host: string): Promise<string[]> => dns.resolver().resolve4(host);

  it('resolves once and connects to the next checked address when one refuses; the socket is handed over clean', async () => {
    const asked = dns.asked.length;
    const { socket, address } = await guardedConnect(
      { host: 'two.test', port: echo.port },
      { rules: ANY_DESTINATION, signal: undefined, lookup },
    );
    assert.equal(address, '127.0.0.2');
    assert.equal(socket.remoteAddress, '127.0.0.2');
    assert.equal(socket.listenerCount('error'), 0);
    assert.equal(socket.isPaused(), true);
    assert.equal(dns.asked.length - asked, 1);
    socket.destroy();
  });

  it('refuses a name its rules deny before resolving it, and names the rule', async () => {
    const asked = dns.asked.length;
    const rules = destinationRules({ ...DEFAULT_POLICY, deny: [parseHostRule('*.test')] });
    const e = await rejection(
      guardedConnect({ host: 'two.test', port: 443 }, { rules, signal: undefined, lookup }),
    );
    assert.ok(e instanceof DestinationDeniedError);
    assert.equal(e.rule, '--deny *.test');
    assert.equal(e.code, 'DESTINATION_DENIED');
    assert.equal(dns.asked.length, asked);
  });

  it('refuses a name when any address is denied, connecting to none', async () => {
    const rules = destinationRules({
      ...DEFAULT_POLICY,
      ports: parsePortList('*'),
      allow: [parseHostRule('127.0.0.2')],
    });
    const e = await rejection(
      guardedConnect({ host: 'two.test', port: echo.port }, { rules, signal: undefined, lookup }),
    );
    assert.ok(e instanceof DestinationDeniedError);
    assert.match(e.rule, /two\.test resolves to 127\.0\.0\.4, a loopback address/);
  });

  it('a name that does not resolve is DNS_FAILED', async () => {
    const e = await rejection(
      guardedConnect({ host: 'nx.test', port: 80 }, { rules: ANY_DESTINATION, signal: undefined, lookup }),
    );
    assert.ok(isWsviaError(e));
    assert.equal(e.code, 'DNS_FAILED');
    assert.equal(e.hop, 'dns');
  });

  it('one deadline bounds a lookup that never answers and a connect that never completes', async () => {
    const silent = new ConnectDeadline(200);
    const started = Date.now();
    const e1 = await rejection(
      guardedConnect(
        { host: 'slow.test', port: 80 },
        { rules: ANY_DESTINATION, signal: silent.signal, lookup: () => new Promise<string[]>(() => {}) },
      ),
    );
    assert.ok(isWsviaError(e1));
    assert.equal(e1.code, 'TCP_TIMEOUT');
    assert.equal(e1.hop, 'dns');
    assert.match(e1.summary, /cannot resolve slow\.test within 200 ms/);
    const deadline = new ConnectDeadline(200);
    const e2 = await rejection(
      guardedConnect(
        { host: 'hole.test', port: hole.port },
        { rules: ANY_DESTINATION, signal: deadline.signal, lookup },
      ),
    );
    assert.ok(isWsviaError(e2));
    assert.equal(e2.code, 'TCP_TIMEOUT');
    assert.equal(e2.hop, 'tcp');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 1500, `both took ${elapsed} ms`);
  });

  it('a timeout without a signal bounds a connect to an IP literal and a lookup alike', async () => {
    const started = Date.now();
    const e1 = await rejection(
      guardedConnect(
        { host: '127.0.0.1', port: hole.port },
        { rules: ANY_DESTINATION, signal: undefined, timeout: 200 },
      ),
    );
    assert.ok(isWsviaError(e1));
    assert.equal(e1.code, 'TCP_TIMEOUT');
    assert.equal(e1.hop, 'tcp');
    assert.match(e1.summary, /no connection to 127\.0\.0\.1:\d+ within 200 ms/);
    const e2 = await rejection(
      guardedConnect(
        { host: 'slow.test', port: 80 },
        {
          rules: ANY_DESTINATION,
          signal: undefined,
          timeout: 200,
          lookup: () => new Promise<string[]>(() => {}),
        },
      ),
    );
    assert.ok(isWsviaError(e2));
    assert.equal(e2.code, 'TCP_TIMEOUT');
    assert.equal(e2.hop, 'dns');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 350 && elapsed < 1500, `both took ${elapsed} ms`);
    // Within the timeout, the connect succeeds and the timer is gone with it (the test process may exit).
    const c = await guardedConnect(
      { host: '127.0.0.2', port: echo.port },
      { rules: ANY_DESTINATION, signal: undefined, timeout: 60_000 },
    );
    c.socket.destroy();
  });

  it('a deadline of 0 sets no limit (no signal)', () => {
    const d = new ConnectDeadline(0);
    assert.equal(d.signal, undefined);
    d.clear();
  });
});

describe(
  'guardedDial: the native dialer under the same rules, deadline and errors',
  relayOptions('splice'),
  () => {
    let dns: TestDnsServer;
    let echo: TcpPeer;
    let hole: Blackhole;
    let dialer: NativeDialer;
    before(async () => {
      echo = await startTcpEcho('127.0.0.2');
      hole = await startBlackhole();
      dns = await startDnsServer({ 'two.test': ['127.0.0.4', '127.0.0.2'] });
      const d = nativeDialer();
      assert.ok(d, 'the loaded addon has no dialer');
      dialer = d;
    });
    after(async () => {
      hole.stop();
      await echo.close();
      await dns.close();
    });
    const lookup = (host: string): Promise<string[]> => dns.resolver().resolve4(host);

    it('resolves once, passes a refusing address over, and hands back a connected fd that carries bytes', async () => {
      const asked = dns.asked.length;
      const { fd, address } = await guardedDial(
        { host: 'two.test', port: echo.port },
        { rules: ANY_DESTINATION, signal: undefined, lookup },
        dialer,
      );
      assert.equal(address, '127.0.0.2');
      assert.equal(dns.asked.length - asked, 1);
      const s = new net.Socket({ fd, readable: true, writable: true });
      assert.equal(s.remoteAddress, '127.0.0.2');
      assert.equal(s.remotePort, echo.port);
      s.end('ping');
      const got: Buffer[] = [];
      for await (const c of s) got.push(c as Buffer);
      assert.equal(Buffer.concat(got).toString(), 'ping');
    });

    it('a refusal is the same error as guardedConnect gives, errno included', async () => {
      const target = { host: '127.0.0.4', port: echo.port };
      const js = await rejection(guardedConnect(target, { rules: ANY_DESTINATION, signal: undefined }));
      const native = await rejection(
        guardedDial(target, { rules: ANY_DESTINATION, signal: undefined }, dialer),
      );
      assert.ok(isWsviaError(js) && isWsviaError(native));
      assert.equal(native.code, 'CONNECTION_REFUSED');
      assert.equal(native.hop, 'tcp');
      assert.equal(native.summary, js.summary);
      assert.deepEqual(native.details, js.details);
      assert.equal(native.details?.['errno'], 'ECONNREFUSED');
    });

    it('a denied address is refused before any connect', async () => {
      const rules = destinationRules({ ...DEFAULT_POLICY, ports: parsePortList('*') });
      const e = await rejection(
        guardedDial({ host: '127.0.0.2', port: echo.port }, { rules, signal: undefined }, dialer),
      );
      assert.ok(e instanceof DestinationDeniedError);
    });

    it('a worker that ends with a dial under way closes its fd, and the process goes on', async () => {
      const before = openFds();
      const module = new URL('../../src/serve/splice-relay.js', import.meta.url).href;
      const worker = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.module).then((m) => {
        const h = m.nativeDialer().dial('127.0.0.1', workerData.port, () => parentPort.postMessage('called back'));
        parentPort.postMessage(typeof h === 'number' ? 'failed ' + h : 'dialing');
      });`,
        { eval: true, workerData: { module, port: hole.port } },
      );
      const said = await new Promise((r) => worker.once('message', r));
      assert.equal(said, 'dialing');
      const exited = new Promise((r) => worker.once('exit', r));
      await worker.terminate();
      await exited;
      await until("the worker's fds closed, the dialed one included", () => openFds() === before);
    });

    it('the timeout and an abort each stop a connect that never completes, and close its fd', async () => {
      const before = openFds();
      const started = Date.now();
      const e1 = await rejection(
        guardedDial(
          { host: '127.0.0.1', port: hole.port },
          { rules: ANY_DESTINATION, signal: undefined, timeout: 200 },
          dialer,
        ),
      );
      assert.ok(isWsviaError(e1));
      assert.equal(e1.code, 'TCP_TIMEOUT');
      assert.match(e1.summary, /no connection to 127\.0\.0\.1:\d+ within 200 ms/);
      assert.ok(Date.now() - started < 1500);
      const stop = new AbortController();
      const pending = rejection(
        guardedDial(
          { host: '127.0.0.1', port: hole.port },
          { rules: ANY_DESTINATION, signal: stop.signal },
          dialer,
        ),
      );
      stop.abort(new Error('the client left'));
      const e2 = await pending;
      assert.ok(isWsviaError(e2));
      assert.equal(e2.code, 'CONNECTION_RESET');
      assert.match(e2.summary, /abandoned/);
      await until('every dialed fd closed', () => openFds() === before);
    });
  },
);
