import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import WebSocket from 'ws';
import type { UserStore } from '../../src/auth/server-auth.js';
import { startBridge } from '../../src/bridge/server.js';
import { tcpEcho } from './tcp-servers.js';

/** A user store whose back end is down: every check rejects (an LDAP or database store can). */
const brokenStore: UserStore = {
  verify: () => Promise.reject(new Error('user store unavailable')),
};

function get(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

const basic = { Authorization: `Basic ${Buffer.from('ann:secret').toString('base64')}` };

test('a user store that rejects answers that request 500 and the bridge goes on (no unhandled rejection)', async () => {
  const echo = await tcpEcho();
  const bridge = await startBridge({
    port: 0,
    target: { host: '127.0.0.1', port: echo.port },
    users: brokenStore,
  });
  try {
    const url = bridge.url.replace(/^ws/, 'http');
    assert.equal(await get(url, basic), 500);
    // The failed check was this request's alone: the next one is answered the same way, by a live process.
    assert.equal(await get(url, basic), 500);
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(bridge.url, { headers: basic });
      ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      ws.on('error', (e) => resolve(e.message));
    });
    assert.notEqual(refused, '101');
  } finally {
    await bridge.close();
    await echo.close();
  }
});
