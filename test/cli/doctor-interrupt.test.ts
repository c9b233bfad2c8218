/**
 * `wsvia doctor --idle-probe` as a user runs it: each step and each probe connection printed as it ends, and Ctrl-C
 * (SIGINT) printing what was found so far, exit 130.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { EXIT_CODES } from '../../src/errors.js';
import { WSVIA } from '../helpers/cli.js';
import { until } from '../helpers/eventually.js';

describe('wsvia doctor --idle-probe: progress and interruption', () => {
  let echo: EchoServer;
  before(async () => {
    // An echo server never cuts a silent WebSocket: the probe would run its whole 30 s.
    echo = await startEchoServer();
  });
  after(() => echo.close());

  it('prints steps and probe connections as they end; SIGINT prints the partial result and exits 130', async () => {
    const child = spawn(process.execPath, [WSVIA, 'doctor', echo.url, '--no-proxy', '--idle-probe', '30'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      // The path's steps come before the probe's first connection has ended: printed as they happen.
      await until('the roundtrip step', () => /^✓ roundtrip /m.test(out));
      // The probe's line may come in a later write than the roundtrip's.
      await until('the probe to start', () => /^… idle {6}10 silent WebSockets opened/m.test(out));
      assert.doesNotMatch(out, /^verdict:/m);
      await until('the first probe connection to end', () => /^ +silent 3 s: survived$/m.test(out));
      child.kill('SIGINT');
      assert.equal(await exited, EXIT_CODES.interrupted, err);
    } finally {
      child.kill('SIGKILL');
    }
    assert.match(out, /^wsvia doctor ws:\/\/127\.0\.0\.1:\d+\/\n\n✓ route /);
    assert.match(
      out,
      /^idle: interrupted after \d+ of 10 probe connections: no cutoff found \(\d+ s of silence survived\)$/m,
    );
    assert.match(out, /^verdict: INTERRUPTED — what was found before Ctrl-C is above$/m);
    assert.doesNotMatch(out + err, /^\s+at /m, 'no stack trace');
  });

  it('with --json, SIGINT during the probe prints the report so far as one JSON object and exits 130', async () => {
    const before = echo.received.length;
    const child = spawn(
      process.execPath,
      [WSVIA, 'doctor', echo.url, '--no-proxy', '--idle-probe', '30', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      // The diagnosed connection and the probe's 10 silent ones have reached the server: the probe is running.
      await until('the probe connections', () => echo.received.length >= before + 11);
      child.kill('SIGINT');
      assert.equal(await exited, EXIT_CODES.interrupted);
    } finally {
      child.kill('SIGKILL');
    }
    const j = JSON.parse(out) as {
      ok: boolean;
      code: null;
      summary: string;
      steps: { step: string }[];
      idle: unknown;
    };
    assert.equal(j.ok, false);
    assert.equal(j.code, null);
    assert.match(j.summary, /interrupted/);
    assert.deepEqual(
      j.steps.map((s) => s.step),
      ['route', 'dns', 'tcp', 'upgrade', 'roundtrip'],
    );
    assert.deepEqual(j.idle, { cutoffSeconds: null, survivedSeconds: 0, how: 'not cut' });
  });
});
