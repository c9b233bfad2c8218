/**
 * The single executable (`npm run sea`): built from this checkout into a temporary directory, then copied alone
 * into an empty one and run with an empty environment (no PATH, no HOME, no node_modules anywhere near it).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { VERSION } from '../src/cli/version.js';
import { until } from './helpers/eventually.js';
import { tempDir } from './helpers/process.js';

const run = promisify(execFile);

describe(
  'the single executable, alone in an empty directory with an empty environment',
  { timeout: 120_000 },
  () => {
    let build = '';
    let alone = '';
    let exe = '';
    const bare = (args: string[]) => run(exe, args, { cwd: alone, env: {}, timeout: 30_000 });

    before(async () => {
      build = tempDir('wsvia-sea-build-');
      await run(process.execPath, ['scripts/build-sea.mjs', '--out', build], { timeout: 90_000 });
      alone = tempDir('wsvia-sea-');
      exe = path.join(alone, 'wsvia');
      fs.copyFileSync(path.join(build, 'wsvia'), exe);
      fs.chmodSync(exe, 0o755);
      fs.rmSync(build, { recursive: true, force: true });
      assert.deepEqual(fs.readdirSync(alone), ['wsvia']);
    });
    after(() => {
      fs.rmSync(build, { recursive: true, force: true });
      fs.rmSync(alone, { recursive: true, force: true });
    });

    test('--version names the version and, once, the native addons it runs without', async () => {
      const { stdout, stderr } = await bare(['--version']);
      assert.match(
        stdout,
        new RegExp(
          `^wsvia ${VERSION.replaceAll('.', '\\.')} \\(Node\\.js v\\d+\\.\\d+\\.\\d+, single executable\\)\n`,
        ),
      );
      assert.equal(
        stdout.match(/without the optional native addons: bufferutil .*kerberos/g)?.length,
        1,
        stdout,
      );
      assert.equal(stderr, '');
    });

    test('demo runs the echo server, wsvia proxy (as its own child process) and connect, and exits 0', async () => {
      const { stdout, stderr } = await bare(['demo']);
      assert.match(stdout, /hello through wsvia/);
      assert.match(stderr, /HTTP\/1\.1 101 Switching Protocols/);
      assert.doesNotMatch(stderr, /Warning/);
    });

    test('route --pac runs the PAC in QuickJS, whose WebAssembly is inside the executable', async () => {
      const pac = path.join(tempDir('wsvia-sea-pac-'), 'proxy.pac');
      fs.writeFileSync(
        pac,
        'function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:3128; DIRECT"; }\n',
      );
      try {
        const { stdout } = await bare(['route', 'ws://a.test/', '--pac', pac]);
        assert.match(stdout, /1\. http:\/\/127\.0\.0\.1:3128/);
        assert.match(stdout, /2\. direct/);
      } finally {
        fs.rmSync(path.dirname(pac), { recursive: true, force: true });
      }
    });

    test('every command answers --help, and completion prints a script', async () => {
      for (const command of [
        'connect',
        'proxy',
        'bridge',
        'tunnel',
        'doctor',
        'route',
        'gateway',
        'echo',
        'demo',
      ]) {
        const { stdout } = await bare([command, '--help']);
        assert.match(stdout, /usage: wsvia /, command);
      }
      const { stdout } = await bare(['completion', 'bash']);
      assert.match(stdout, /complete .*-F _wsvia wsvia/);
    });

    test('proxy --workers 2 starts its cluster workers (they get the command, not the executable path)', async () => {
      const child = spawn(exe, ['proxy', '--port', '0', '--workers', '2'], { cwd: alone, env: {} });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        await until(
          'the proxy to listen or exit',
          () => /\(2 workers\)\n/.test(err) || child.exitCode !== null,
        );
        // "listening on" goes to stderr, as in every server: stdout carries only access-log lines.
        assert.match(err, /\(2 workers\)/, err);
        assert.equal(out, '');
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0, err);
      assert.doesNotMatch(err, /unknown command/);
    });
  },
);
