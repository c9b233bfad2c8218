/**
 * The V8 flags each server sets at start-up, read from the real command: a module imported before wsvia records
 * every `v8.setFlagsFromString` call into a file. The gateway holds idle WebSockets and favours memory; the proxy
 * keeps V8's collector as it is (its target is new tunnels per second); `WSVIA_V8_DEFAULTS=1` keeps V8's own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startPeer, tempDir } from '../helpers/process.js';

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

  const gateway = (port: number): string[] => [
    'gateway',
    '--listen',
    `127.0.0.1:${port}`,
    '--route',
    '/=ws://127.0.0.1:9',
  ];

  it('the gateway keeps the young generation small and asks V8 to collect for size', async () => {
    const flags = await flagsOf('gateway', gateway, { WSVIA_V8_DEFAULTS: undefined });
    assert.deepEqual(flags, ['--semi-space-growth-factor=1', '--optimize-for-size']);
  });

  it('the proxy and the bridge keep the young generation small and nothing else', async () => {
    const proxy = await flagsOf('proxy', (port) => ['proxy', '--host', '127.0.0.1', '--port', String(port)], {
      WSVIA_V8_DEFAULTS: undefined,
    });
    assert.deepEqual(proxy, ['--semi-space-growth-factor=1']);
    const bridge = await flagsOf(
      'bridge',
      (port) => ['bridge', '--listen', `127.0.0.1:${port}`, '--target', '127.0.0.1:9'],
      { WSVIA_V8_DEFAULTS: undefined },
    );
    assert.deepEqual(bridge, ['--semi-space-growth-factor=1']);
  });

  it('WSVIA_V8_DEFAULTS=1 keeps V8 as it is', async () => {
    assert.deepEqual(await flagsOf('defaults', gateway, { WSVIA_V8_DEFAULTS: '1' }), []);
  });
});
