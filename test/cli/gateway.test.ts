import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { freePort, startPeer, tempDir, type Peer } from '../helpers/process.js';
import { closed, echo, openWs, startUpstream, type Upstream } from '../gateway/peers.js';
import { until } from '../helpers/eventually.js';

const MAIN = path.resolve('dist/src/cli/main.js');

describe('wsvia gateway (the command)', () => {
  let a: Upstream;
  let b: Upstream;
  let dir: string;
  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    dir = tempDir();
  });
  after(async () => {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a broken config at start, naming the key (exit 2)', () => {
    const file = path.join(dir, 'broken.yaml');
    fs.writeFileSync(
      file,
      'listen: 127.0.0.1:0\nroutes:\n  - { path: /, upstream: [ws://127.0.0.1:1, 42] }\n',
    );
    const r = spawnSync(process.execPath, [MAIN, 'gateway', '--config', file], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /broken\.yaml: routes\[0\]\.upstream\[1\]: invalid upstream URL "42"/);
    const r2 = spawnSync(
      process.execPath,
      [MAIN, 'gateway', '--listen', '127.0.0.1:0', '--route', 'chat=ws://x'],
      {
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    assert.equal(r2.status, 2);
    assert.match(r2.stderr, /a route path must start with \//);
  });

  it('prints its address with --listen 127.0.0.1:0', async () => {
    const child = spawn(process.execPath, [
      MAIN,
      'gateway',
      '--listen',
      '127.0.0.1:0',
      '--route',
      `/=${a.url}`,
    ]);
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stderr.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^wsvia gateway listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
          if (m) resolve(m[1] as string);
        });
        child.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
      });
      const { ws, report } = await openWs(`${line.replace('http', 'ws')}/x`);
      assert.equal(report['name'], 'a');
      ws.close();
      await closed(ws);
    } finally {
      child.kill('SIGKILL');
    }
  });

  describe('reload and drain', () => {
    let port: number;
    let peer: Peer;
    let file: string;
    const write = (upstream: string, extra = ''): void =>
      fs.writeFileSync(
        file,
        `listen: 127.0.0.1:${port}\nroutes:\n  - { path: /, upstream: ${upstream} }\n${extra}`,
      );
    before(async () => {
      port = await freePort();
      file = path.join(dir, 'gateway.yaml');
      write(a.url, 'drain-timeout: 3\ndrain-spread: 0.5\n');
      peer = await startPeer(process.execPath, [MAIN, 'gateway', '--config', file, '--watch'], { port });
    });
    after(() => peer.stop());

    it('SIGHUP: an open WebSocket stays on its upstream, a new one takes the new route', async () => {
      const old = await openWs(`ws://127.0.0.1:${port}/`);
      assert.equal(old.report['name'], 'a');
      write(b.url, 'drain-timeout: 3\ndrain-spread: 0.5\n');
      peer.process.kill('SIGHUP');
      await until('the reload', () => /reloaded/.test(peer.output()));
      const fresh = await openWs(`ws://127.0.0.1:${port}/`);
      assert.equal(fresh.report['name'], 'b');
      assert.equal((await echo(old.ws, 'still on a')).toString(), 'still on a');
      assert.equal(old.ws.readyState, WebSocket.OPEN);
      fresh.ws.close();
      await closed(fresh.ws);

      // A broken file at reload: the running config stays, and the gateway says why.
      fs.writeFileSync(file, `listen: 127.0.0.1:${port}\nroutes:\n  - { path: /, upstream: ftp://nope }\n`);
      peer.process.kill('SIGHUP');
      await until('the failed reload reported', () =>
        /reload failed \(SIGHUP\), keeping the running configuration/.test(peer.output()),
      );
      assert.match(peer.output(), /routes\[0\]\.upstream\[0\]: upstream ftp:\/\/nope must be ws:\/\//);
      const again = await openWs(`ws://127.0.0.1:${port}/`);
      assert.equal(again.report['name'], 'b');
      again.ws.close();
      await closed(again.ws);

      // --watch: a good file is picked up without a signal.
      write(a.url, 'drain-timeout: 3\ndrain-spread: 0.5\n');
      await until('the reload on file change', () => /reloaded \(file changed\)/.test(peer.output()));
      const watched = await openWs(`ws://127.0.0.1:${port}/`);
      assert.equal(watched.report['name'], 'a');
      watched.ws.close();
      await closed(watched.ws);
      old.ws.close();
      await closed(old.ws);
    });

    it('SIGTERM: sends 1001 to open WebSockets, then exits 0', async () => {
      const conns = await Promise.all([1, 2].map(() => openWs(`ws://127.0.0.1:${port}/`)));
      const codes = Promise.all(conns.map((c) => closed(c.ws)));
      const exited = new Promise<number | null>((resolve) => peer.process.once('exit', (c) => resolve(c)));
      peer.process.kill('SIGTERM');
      assert.deepEqual(await codes, [1001, 1001]);
      assert.equal(await exited, 0);
    });
  });

  it('--workers 2 shares one port and drains on SIGTERM', async () => {
    const port = await freePort();
    const peer = await startPeer(
      process.execPath,
      [MAIN, 'gateway', '--listen', `127.0.0.1:${port}`, '--route', `/=${a.url}`, '--workers', '2'],
      { port },
    );
    try {
      await until('the listening line', () => /listening on http:\/\/127\.0\.0\.1:\d+/.test(peer.output()));
      assert.equal(peer.output().match(/listening on/g)?.length, 1);
      for (let i = 0; i < 4; i++) {
        const { ws } = await openWs(`ws://127.0.0.1:${port}/`);
        assert.equal((await echo(ws, `m${i}`)).toString(), `m${i}`);
        ws.close();
        await closed(ws);
      }
      const exited = new Promise<number | null>((resolve) => peer.process.once('exit', (c) => resolve(c)));
      peer.process.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      await peer.stop();
    }
  });
});
