/**
 * The gateway closes a WebSocket client first (drain, idle, lifetime): every message the client sent before it saw
 * the close reaches the upstream, because the upstream's close is the client's own reply, relayed after them.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { AccessLog } from '../../src/observe/access-log.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { until } from '../helpers/eventually.js';
import { configFromYaml } from './peers.js';

describe('gateway drain: client first, nothing the client sent is lost', () => {
  let upstream: WebSocketServer;
  const received: number[] = [];
  let upstreamCloseCode: number | undefined;
  before(async () => {
    upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    upstream.on('connection', (ws) => {
      ws.on('message', (m: Buffer) => received.push(Number(m.toString())));
      ws.on('close', (code) => (upstreamCloseCode = code));
    });
    await once(upstream, 'listening');
  });
  after(() => new Promise<void>((r) => upstream.close(() => r())));

  it('a client sending without pause: every message it sent before the 1001 reached the upstream, then 1001 there too', async () => {
    const port = (upstream.address() as net.AddressInfo).port;
    const base = configFromYaml(
      `listen: 127.0.0.1:0\nroutes: [{ path: /, upstream: ws://127.0.0.1:${port} }]\n`,
    );
    const config = { ...base, limits: { ...base.limits, drainSpread: 0, drainTimeout: 5000 } };
    const gateway = new Gateway(config, { accessLog: AccessLog.open(undefined) });
    const a = await gateway.start();
    const ws = new WebSocket(`ws://127.0.0.1:${a.listen?.port}/`);
    await once(ws, 'open');
    let sent = 0;
    const pump = (): void => {
      // Send in bursts between event-loop turns, so messages are always in flight when the close arrives.
      for (let i = 0; i < 20 && ws.readyState === WebSocket.OPEN; i++) ws.send(String(sent++));
      if (ws.readyState === WebSocket.OPEN) setImmediate(pump);
    };
    pump();
    await until('the upstream has messages', () => received.length > 200);
    const [code] = await Promise.all([once(ws, 'close').then(([c]) => c as number), gateway.drain()]);
    assert.equal(code, 1001);
    await until('the upstream saw the close', () => upstreamCloseCode !== undefined);
    assert.equal(upstreamCloseCode, 1001, 'the client’s reply, relayed');
    assert.equal(received.length, sent, `sent ${sent}, the upstream received ${received.length}`);
    assert.deepEqual(received, [...Array(sent).keys()]);
  });
});
