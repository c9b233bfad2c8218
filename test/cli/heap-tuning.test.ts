/**
 * The V8 flags each server sets, read from the real command: a module imported before wsvia records every
 * `v8.setFlagsFromString` call into a file. Every server keeps V8's young generation small and collects once a
 * burst of connections has ended (seen in V8's own GC trace of the real gateway); `WSVIA_V8_DEFAULTS=1` keeps V8's
 * own behaviour.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { gcQuietMs } from '../../src/cli/heap-tuning.js';
import { DEFAULT_MIN_OPENED, DEFAULT_QUIET_MS } from '../../src/serve/after-burst-gc.js';
import { startUpstream } from '../gateway/peers.js';
import { until } from '../helpers/eventually.js';
import { freePort, startPeer, stopProcess, tempDir } from '../helpers/process.js';

const MAIN = path.resolve('dist/src/cli/main.js');

const RECORDER = `import fs from 'node:fs';
import v8 from 'node:v8';
const set = v8.setFlagsFromString.bind(v8);
v8.setFlagsFromString = (flags) => {
  fs.appendFileSync(process.env.FLAGS_FILE, flags + '\\n');
  set(flags);
};
`;

describe('V8 flags of the servers (wsvia gateway, proxy, bridge)', () => {
  let dir: string;
  let recorder: string;
  before(() => {
    dir = tempDir();
    recorder = path.join(dir, 'recorder.mjs');
    fs.writeFileSync(recorder, RECORDER);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Starts `wsvia COMMAND ARGS` on a free port, stops it once it listens, and returns the flags it set. */
  async function flagsOf(
    name: string,
    args: (port: number) => string[],
    env: NodeJS.ProcessEnv = {},
  ): Promise<string[]> {
    const port = await freePort();
    const file = path.join(dir, `${name}.flags`);
    fs.writeFileSync(file, '');
    const peer = await startPeer(process.execPath, ['--import', recorder, MAIN, ...args(port)], {
      port,
      env: { ...process.env, ...env, FLAGS_FILE: file },
    });
    await peer.stop();
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  }

  const gateway = (port: number, upstream = 'ws://127.0.0.1:9'): string[] => [
    'gateway',
    '--listen',
    `127.0.0.1:${port}`,
    '--route',
    `/=${upstream}`,
  ];
  // The collection after a burst reaches V8's gc() through one context made while --expose-gc is on, then off.
  const GC = ['--expose-gc', '--no-expose-gc'];

  it('the gateway, the proxy and the bridge keep the young generation small and can collect after a burst', async () => {
    const flags = await flagsOf('gateway', gateway, { WSVIA_V8_DEFAULTS: undefined });
    assert.deepEqual(flags, ['--semi-space-growth-factor=1', ...GC]);
    const proxy = await flagsOf('proxy', (port) => ['proxy', '--host', '127.0.0.1', '--port', String(port)], {
      WSVIA_V8_DEFAULTS: undefined,
    });
    assert.deepEqual(proxy, ['--semi-space-growth-factor=1', ...GC]);
    const bridge = await flagsOf(
      'bridge',
      (port) => ['bridge', '--listen', `127.0.0.1:${port}`, '--target', '127.0.0.1:9'],
      { WSVIA_V8_DEFAULTS: undefined },
    );
    assert.deepEqual(bridge, ['--semi-space-growth-factor=1', ...GC]);
  });

  it('WSVIA_V8_DEFAULTS=1 keeps V8 as it is (no flag, no collection after bursts)', async () => {
    assert.deepEqual(await flagsOf('defaults', gateway, { WSVIA_V8_DEFAULTS: '1' }), []);
  });

  it('WSVIA_GC_QUIET_MS=0 turns the collection after bursts off, and a bad value is named', async () => {
    assert.deepEqual(
      await flagsOf('no-gc', gateway, { WSVIA_GC_QUIET_MS: '0', WSVIA_V8_DEFAULTS: undefined }),
      ['--semi-space-growth-factor=1'],
    );
    const warnings: string[] = [];
    assert.equal(
      gcQuietMs({ WSVIA_GC_QUIET_MS: 'soon' }, (m) => warnings.push(m)),
      DEFAULT_QUIET_MS,
    );
    assert.deepEqual(warnings, [
      `WSVIA_GC_QUIET_MS="soon" is not a whole number of milliseconds: using ${DEFAULT_QUIET_MS}`,
    ]);
    assert.equal(gcQuietMs({ WSVIA_GC_QUIET_MS: '250' }), 250);
  });

  it('the young generation may grow while WebSockets churn through the gateway, and is held again once they stay open', async () => {
    const upstream = await startUpstream('a');
    const port = await freePort();
    const file = path.join(dir, 'churn.flags');
    fs.writeFileSync(file, '');
    const peer = await startPeer(
      process.execPath,
      ['--import', recorder, MAIN, ...gateway(port, upstream.url)],
      {
        port,
        env: { ...process.env, WSVIA_GC_QUIET_MS: '0', WSVIA_V8_DEFAULTS: undefined, FLAGS_FILE: file },
      },
    );
    const growth = (): string[] =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('--semi-space-growth-factor='));
    const open = async (): Promise<WebSocket> => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      // A held WebSocket the gateway cuts must fail the assertions below, not crash the test process.
      ws.on('error', () => {});
      return ws;
    };
    const churnUntil = async (what: string, done: () => boolean): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (!done()) {
        assert.ok(Date.now() < deadline, `${what}: not within 30 s (flags: ${growth().join(' ')})`);
        const ws = await open();
        ws.close();
        await new Promise((resolve) => ws.once('close', resolve));
      }
    };
    const held: WebSocket[] = [];
    try {
      // Hundreds a second, each closed again: churn, and the young generation may grow.
      await churnUntil('growth under churn', () => growth().length >= 2);
      assert.deepEqual(growth(), ['--semi-space-growth-factor=1', '--semi-space-growth-factor=2']);
      // The same churn with more than DEFAULT_MIN_OPENED held open: the young generation is held where it is.
      for (let i = 0; i < DEFAULT_MIN_OPENED + 10; i++) held.push(await open());
      await churnUntil('held with connections open', () => growth().length >= 3);
      assert.equal(growth()[2], '--semi-space-growth-factor=1');
    } finally {
      for (const ws of held) ws.terminate();
      await peer.stop();
      await upstream.close();
    }
  });

  it('the gateway runs one full collection once a burst of WebSockets has ended', async () => {
    const upstream = await startUpstream('a');
    const port = await freePort();
    const file = path.join(dir, 'burst.flags');
    const child = spawn(
      process.execPath,
      ['--trace-gc', '--import', recorder, MAIN, ...gateway(port, upstream.url)],
      { env: { ...process.env, WSVIA_GC_QUIET_MS: '200', WSVIA_V8_DEFAULTS: undefined, FLAGS_FILE: file } },
    );
    // V8 names a collection asked for by `gc()` "testing" in its trace; no other collection is.
    let pending = '';
    const forced = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        pending += b.toString();
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        const line = lines.find((l) => /Mark-Compact.* testing;/.test(l));
        if (line) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
      setTimeout(() => reject(new Error('no forced collection within 60 s of the start')), 60_000).unref();
    });
    forced.catch(() => {});
    const sockets: WebSocket[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (b: Buffer) => {
          if (b.toString().includes('listening on')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before listening`)));
      });
      for (let i = 0; i < DEFAULT_MIN_OPENED + 10; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
        sockets.push(ws);
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
      }
      await forced;
      // Compacting every page for that one collection only (the flag file is written just after the trace line).
      const last2 = (): string =>
        fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-2).join(' ');
      await until('the compaction flag set back', () => last2().startsWith('--compact-on-every-full-gc '));
      assert.equal(last2(), '--compact-on-every-full-gc --no-compact-on-every-full-gc');
    } finally {
      for (const ws of sockets) ws.terminate();
      await stopProcess(child);
      await upstream.close();
    }
  });
});
