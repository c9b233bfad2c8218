import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { UserStore } from '../../src/auth/server-auth.js';
import { getHeader } from '../../src/protocol/headers.js';
import { ResponseHeadReader, type ResponseHead } from '../../src/protocol/head.js';
import {
  connectRequest,
  startProxy,
  startTcpEcho,
  type RunningWsviaProxy,
  type TcpPeer,
} from '../helpers/wsvia-proxy.js';

/** A user store that counts its password checks. */
class CountingUsers implements UserStore {
  checks = 0;
  verify(user: string, password: string): Promise<boolean> {
    this.checks++;
    return Promise.resolve(user === 'alice' && password === 'right');
  }
}

const basic = (user: string, pass: string): string =>
  `Proxy-Authorization: Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** One CONNECT from `localAddress` (another loopback address is another client). */
function connectFrom(localAddress: string, port: number, text: string): Promise<ResponseHead> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    const reader = new ResponseHeadReader({ peer: 'proxy', hop: 'proxy' });
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      const r = reader.receive(chunk);
      if (!r) return;
      socket.destroy();
      resolve(r.head);
    });
    socket.write(text);
  });
}

describe('wsvia proxy: a password flood from one address', () => {
  let proxy: RunningWsviaProxy;
  let echo: TcpPeer;
  const users = new CountingUsers();
  before(async () => {
    echo = await startTcpEcho();
    proxy = await startProxy({ users, limits: { authFailuresPerMinute: 3 } });
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  it('gets 429 with Retry-After after N failures, while another address is still served', async () => {
    const target = `127.0.0.1:${echo.port}`;
    for (let i = 0; i < 3; i++) {
      const h = await connectFrom(
        '127.0.0.1',
        proxy.port,
        connectRequest(target, [basic('alice', `guess${i}`)]),
      );
      assert.equal(h.status, 407);
    }
    const checks = users.checks;
    const limited = await connectFrom(
      '127.0.0.1',
      proxy.port,
      connectRequest(target, [basic('alice', 'guess')]),
    );
    assert.equal(limited.status, 429);
    const retry = Number(getHeader(limited.headers, 'retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(users.checks, checks, 'no password check for a limited address');
    const other = await connectFrom(
      '127.0.0.2',
      proxy.port,
      connectRequest(target, [basic('alice', 'right')]),
    );
    assert.equal(other.status, 200);
    assert.equal(proxy.server.metrics.authFailures.get({ reason: 'limited' }), 1);
  });

  it('credentials already verified are answered from the cache, without a new check', async () => {
    const target = `127.0.0.1:${echo.port}`;
    const first = await connectFrom(
      '127.0.0.3',
      proxy.port,
      connectRequest(target, [basic('alice', 'right')]),
    );
    assert.equal(first.status, 200);
    const checks = users.checks;
    for (let i = 0; i < 3; i++) {
      const again = await connectFrom(
        '127.0.0.3',
        proxy.port,
        connectRequest(target, [basic('alice', 'right')]),
      );
      assert.equal(again.status, 200);
    }
    assert.equal(users.checks, checks);
  });

  it('the first 407 of a challenge (no credentials) does not count as a failure', async () => {
    const target = `127.0.0.1:${echo.port}`;
    for (let i = 0; i < 5; i++)
      assert.equal((await connectFrom('127.0.0.4', proxy.port, connectRequest(target))).status, 407);
    const ok = await connectFrom('127.0.0.4', proxy.port, connectRequest(target, [basic('alice', 'right')]));
    assert.equal(ok.status, 200);
  });
});
