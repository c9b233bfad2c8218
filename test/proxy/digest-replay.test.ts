import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseChallenges, type Challenge } from '../../src/auth/challenge.js';
import { Credentials } from '../../src/auth/credentials.js';
import { digestAuthorization } from '../../src/auth/digest.js';
import { StaticUsers } from '../../src/auth/server-auth.js';
import { getHeaderValues } from '../../src/protocol/headers.js';
import {
  connectRequest,
  errorAnswer,
  request,
  startProxy,
  startTcpEcho,
  type RunningWsviaProxy,
  type TcpPeer,
} from '../helpers/wsvia-proxy.js';

const alice = new Credentials('alice', 's3cret-pass');

describe('wsvia proxy: a Digest response is good once', () => {
  let proxy: RunningWsviaProxy;
  let echo: TcpPeer;
  let target: string;
  before(async () => {
    echo = await startTcpEcho();
    target = `127.0.0.1:${echo.port}`;
    proxy = await startProxy({ users: new StaticUsers(['alice:s3cret-pass']), authSchemes: ['digest'] });
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  async function challenge(): Promise<Challenge> {
    const r = await errorAnswer(proxy.port, connectRequest(target));
    assert.equal(r.status, 407);
    const c = parseChallenges(getHeaderValues(r.head.headers, 'proxy-authenticate')).find(
      (x) => x.scheme === 'digest',
    );
    assert.ok(c);
    return c;
  }

  async function statusWith(authorization: string): Promise<{ status: number; stale: boolean }> {
    const r = await request(proxy.port, connectRequest(target, [`Proxy-Authorization: ${authorization}`]));
    r.socket.destroy();
    const again = parseChallenges(getHeaderValues(r.head.headers, 'proxy-authenticate'));
    return { status: r.head.status, stale: again.some((c) => c.params.stale === 'true') };
  }

  it('the same Proxy-Authorization sent twice: 200, then a fresh 407 (not stale)', async () => {
    const auth = digestAuthorization(await challenge(), alice, { method: 'CONNECT', uri: target, nc: 1 });
    assert.deepEqual(await statusWith(auth), { status: 200, stale: false });
    assert.deepEqual(await statusWith(auth), { status: 407, stale: false });
    assert.equal(proxy.server.metrics.authFailures.get({ reason: 'replayed' }), 1);
  });

  it('an increasing nc on one nonce is accepted; a lower one is refused', async () => {
    const c = await challenge();
    for (const nc of [1, 2, 5]) {
      const auth = digestAuthorization(c, alice, { method: 'CONNECT', uri: target, nc });
      assert.equal((await statusWith(auth)).status, 200, `nc=${nc}`);
    }
    const lower = digestAuthorization(c, alice, { method: 'CONNECT', uri: target, nc: 3 });
    assert.equal((await statusWith(lower)).status, 407);
  });

  it('a response without qop (RFC 2069 style) is refused', async () => {
    const c = await challenge();
    const { qop: _qop, ...params } = c.params;
    const auth = digestAuthorization({ ...c, params }, alice, { method: 'CONNECT', uri: target });
    assert.doesNotMatch(auth, /qop=/);
    assert.equal((await statusWith(auth)).status, 407);
  });
});
