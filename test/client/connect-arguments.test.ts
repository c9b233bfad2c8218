import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { connect } from '../../src/client/connect.js';
import { runCli } from '../helpers/cli.js';
import { until } from '../helpers/eventually.js';
import { wsviaRejection } from '../helpers/wsvia-rejection.js';

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('connect(): arguments are checked before any I/O', () => {
  let server: net.Server;
  let accepted = 0;
  let url = '';
  before(async () => {
    server = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const cases = {
    'a subprotocol with a space': { protocols: ['chat v2'] },
    'a subprotocol offered twice': { protocols: ['chat', 'chat'] },
    'an empty subprotocol': { protocols: '' },
    'a header name with a space': { headers: { 'X Bad': 'v' } },
    'a header value with CR LF': { headers: { 'X-Ok': 'v\r\nInjected: 1' } },
    'an Origin with a newline': { origin: 'https://a.example\n' },
    'a proxy header with NUL': { proxyHeaders: { 'X-P': 'a\0b' } },
    'a negative maxPayload': { maxPayload: -1 },
  } as const;

  for (const [what, options] of Object.entries(cases)) {
    it(`${what}: INVALID_ARGUMENT, no connection opened, no timer left`, async () => {
      const before = timers();
      const e = await wsviaRejection(connect(url, options));
      assert.equal(e.code, 'INVALID_ARGUMENT', e.message);
      assert.equal(accepted, 0);
      assert.equal(timers(), before);
    });
  }

  it('the CLI exits 2 for an invalid subprotocol, without connecting', async () => {
    const r = await runCli(['connect', url, '--subprotocol', 'chat v2']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /invalid subprotocol "chat v2"/);
    assert.doesNotMatch(r.stderr, /SyntaxError|ReferenceError|at .*\.js/);
    assert.equal(accepted, 0);
  });
});

describe('connect(): a pause right after connect holds', () => {
  let wss: WebSocketServer;
  let port = 0;
  const received: string[] = [];
  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', r));
    port = (wss.address() as net.AddressInfo).port;
    wss.on('connection', (s: ServerSocket) => {
      for (let i = 1; i <= 5; i++) s.send(`m${i}`);
      s.on('message', (d) => received.push(String(d)));
    });
  });
  after(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );

  it('no message arrives while paused; all five after resume()', async () => {
    const ws = await connect(`ws://127.0.0.1:${port}/`);
    after(() => ws.terminate());
    ws.pause();
    const got: string[] = [];
    ws.on('message', (d) => got.push(String(d)));
    // A round trip the server sees: by then its five messages (sent first) have reached this process, and the
    // socket would have been resumed by connect's own turn had it ignored the pause.
    ws.send('sync');
    await until('the server to read sync', () => received.includes('sync'));
    await new Promise((r) => setImmediate(r));
    assert.ok(ws.isPaused);
    assert.deepEqual(got, []);
    ws.resume();
    await until('five messages', () => got.length === 5);
    assert.deepEqual(got, ['m1', 'm2', 'm3', 'm4', 'm5']);
  });
});
