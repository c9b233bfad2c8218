/**
 * `wsvia tunnel` as ssh -L/-R users run it: several -L and -R in one process, each with its own listener, all
 * through one bridge URL (the real CLI against the real `wsvia bridge` CLI).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { exchange, tcpEcho, type TcpServer } from '../bridge/tcp-servers.js';
import { startBridgeCli, type RunningBridge } from '../helpers/bridge-cli.js';
import { runCli, WSVIA } from '../helpers/cli.js';
import { until } from '../helpers/eventually.js';
import { freePort, stopProcess } from '../helpers/process.js';

let first: TcpServer;
let second: TcpServer;
let local: TcpServer;
let bridge: RunningBridge;
let reversePort: number;
before(async () => {
  [first, second, local, reversePort] = await Promise.all([tcpEcho(), tcpEcho(), tcpEcho(), freePort()]);
  bridge = await startBridgeCli([
    '--listen',
    '127.0.0.1:0',
    '--allow-target',
    `127.0.0.1:${first.port}`,
    '--allow-target',
    `127.0.0.1:${second.port}`,
    '--allow-reverse',
    String(reversePort),
  ]);
});
after(async () => {
  await bridge.stop();
  await Promise.all([first.close(), second.close(), local.close()]);
});

/** Starts `wsvia tunnel ...args` and collects its stdout and stderr. */
function startTunnel(args: readonly string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [WSVIA, 'tunnel', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

describe('wsvia tunnel with several forwards', () => {
  test('two -L to two targets and one -R, in one process through one bridge: each carries its own bytes', async () => {
    const t = startTunnel([
      '-L',
      `0:127.0.0.1:${first.port}`,
      '-L',
      `0:127.0.0.1:${second.port}`,
      '-R',
      `${reversePort}:127.0.0.1:${local.port}`,
      bridge.url,
    ]);
    try {
      const listening = (): RegExpMatchArray[] => [
        ...t.out().matchAll(/listening on 127\.0\.0\.1:(\d+) -> \S+ -> 127\.0\.0\.1:(\d+)\n/g),
      ];
      await until('both -L listeners', () => listening().length === 2);
      await until('the -R listener', () => t.out().includes(`bridge listens on 127.0.0.1:${reversePort}`));
      const portFor = (target: number): number =>
        Number(listening().find((m) => Number(m[2]) === target)?.[1]);
      const before = [first.accepted, second.accepted, local.accepted];
      assert.equal((await exchange(portFor(first.port), 'to the first')).toString(), 'to the first');
      assert.equal((await exchange(portFor(second.port), 'to the second')).toString(), 'to the second');
      assert.equal((await exchange(reversePort, 'back home')).toString(), 'back home');
      assert.deepEqual(
        [first.accepted, second.accepted, local.accepted],
        before.map((n) => n + 1),
        'each forward reached its own target once',
      );
    } finally {
      await stopProcess(t.child);
    }
  });

  test('--stdio stands alone: with -L it is a usage error', async () => {
    const r = await runCli(['tunnel', '-L', '8080', '--stdio', 'ws://127.0.0.1:9/']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--stdio alone/);
  });

  test("connect's session flags are refused by tunnel, each named", async () => {
    const r = await runCli(['tunnel', '-L', '8080', 'ws://127.0.0.1:9/', '-b', '--max-time', '3']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--binary, --max-time: wsvia connect options, not tunnel ones/);
  });
});
