/** `wsvia echo` as a user runs it: how it ends its WebSockets when it is stopped. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { startServerCli } from '../helpers/server-cli.js';

describe('wsvia echo', () => {
  it('on SIGTERM closes its WebSockets with 1001 (going away) and exits 0', async () => {
    const echo = await startServerCli('echo', ['--port', '0']);
    try {
      const ws = new WebSocket(echo.url);
      ws.on('error', () => {});
      await once(ws, 'open');
      const closed = once(ws, 'close') as Promise<[number, Buffer]>;
      echo.process.kill('SIGTERM');
      const [code] = await closed;
      assert.equal(code, 1001);
      assert.equal(await echo.exited, 0);
      assert.equal(echo.stdout(), '', 'its messages go to stderr');
    } finally {
      await echo.stop();
    }
  });

  it('on SIGTERM still exits 0 when a client never answers the close (it is cut after its grace)', async () => {
    const echo = await startServerCli('echo', ['--port', '0']);
    const ws = new WebSocket(echo.url);
    ws.on('error', () => {});
    try {
      await once(ws, 'open');
      // A client that reads nothing never sees the 1001, so never answers it.
      (ws as unknown as { _socket: net.Socket })._socket.pause();
      echo.process.kill('SIGTERM');
      assert.equal(await echo.exited, 0);
    } finally {
      ws.terminate();
      await echo.stop();
    }
  });
});
