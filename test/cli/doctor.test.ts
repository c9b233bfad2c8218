import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { exitCodeFor } from '../../src/errors.js';
import { freePort, tempDir } from '../helpers/process.js';
import { startInterceptingGateway, type ScriptedGateway } from '../helpers/intercepting-gateway.js';
import fs from 'node:fs';

const MAIN = path.resolve('dist/src/cli/main.js');

function wsvia(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    for (const k of [
      'http_proxy',
      'https_proxy',
      'HTTP_PROXY',
      'HTTPS_PROXY',
      'all_proxy',
      'ALL_PROXY',
      'ws_proxy',
      'wss_proxy',
    ])
      delete env[k];
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe('wsvia doctor (CLI)', () => {
  let echo: EchoServer;
  let tlsEcho: EchoServer;
  let keys: KeyPair;
  let gateway: ScriptedGateway;
  let caFile: string;
  let dir: string;
  before(async () => {
    keys = makeSelfSigned();
    dir = tempDir();
    caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, keys.cert);
    [echo, tlsEcho, gateway] = await Promise.all([
      startEchoServer({ mirror: true }),
      startEchoServer({ tls: keys, mirror: true }),
      startInterceptingGateway(),
    ]);
  });
  after(async () => {
    await Promise.all([echo?.close(), tlsEcho?.close(), gateway?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--json on a working path: exactly the documented keys, exit 0', async () => {
    const r = await wsvia(['doctor', echo.url, '--json', '--no-proxy']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(j), ['ok', 'code', 'summary', 'steps', 'advice']); // idle: undefined is absent
    assert.equal(j.ok, true);
    assert.equal(j.code, null);
    const steps = j.steps as Record<string, unknown>[];
    assert.deepEqual(
      steps.map((s) => s.step),
      ['route', 'dns', 'tcp', 'upgrade', 'roundtrip'],
    );
    for (const s of steps) assert.deepEqual(Object.keys(s), ['step', 'ok', 'ms', 'detail']);
  });

  it('exits as wsvia connect does for the same failure (connection refused)', async () => {
    const port = await freePort();
    const d = await wsvia(['doctor', `ws://127.0.0.1:${port}/`, '--json', '--no-proxy']);
    const c = await wsvia(['connect', `ws://127.0.0.1:${port}/`, '--no-proxy', '--expect', '0']);
    assert.equal(d.code, exitCodeFor('CONNECTION_REFUSED'));
    assert.equal(d.code, c.code);
    assert.equal((JSON.parse(d.stdout) as { code: string }).code, 'CONNECTION_REFUSED');
  });

  it('the McAfee-style gateway: readable report, exit 5 as connect, and no password anywhere', async () => {
    const proxy = `http://bob:s3cret-pass@127.0.0.1:${gateway.port}`;
    const d = await wsvia(['doctor', tlsEcho.url, '-x', proxy, '--ca', caFile]);
    const c = await wsvia(['connect', tlsEcho.url, '-x', proxy, '--ca', caFile, '--expect', '0']);
    assert.equal(d.code, exitCodeFor('TLS_NOT_SPOKEN'));
    assert.equal(d.code, c.code);
    assert.match(d.stdout, /^✓ proxy .*HTTP\/1\.0 200 Connection established/m);
    assert.match(d.stdout, /^✗ tls .*500 handshakefailed.*McAfee Web Gateway/m);
    assert.match(d.stdout, /^verdict: FAILED \[TLS_NOT_SPOKEN\]/m);
    assert.match(d.stdout, /^advice:/m);
    assert.doesNotMatch(d.stdout + d.stderr, /s3cret-pass/);
    const j = await wsvia(['doctor', tlsEcho.url, '-x', proxy, '--ca', caFile, '--json', '--trace']);
    assert.doesNotMatch(j.stdout + j.stderr, /s3cret-pass|Ym9iOnMzY3JldC1wYXNz/);
  });

  it('usage errors exit 2; --idle-probe is the doctor flag, the rest are connect options', async () => {
    assert.equal((await wsvia(['doctor'])).code, 2);
    assert.equal((await wsvia(['doctor', echo.url, '--idle-probe', 'soon'])).code, 2);
    assert.equal((await wsvia(['doctor', echo.url, '--bogus'])).code, 2);
    const help = await wsvia(['--help']);
    assert.match(help.stdout, /doctor/);
  });
});
