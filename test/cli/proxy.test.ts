/** `wsvia proxy` as a process: printing its URL, SIGTERM drain, the config file and its errors, --workers. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { spliceSupport } from '../../src/serve/splice-relay.js';
import { tempDir } from '../helpers/process.js';
import { until } from '../helpers/eventually.js';
import { connectRequest, readAll, request } from '../helpers/wsvia-proxy.js';

const MAIN = path.resolve('dist/src/cli/main.js');

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts `wsvia proxy ARGS` and waits for its "listening on" line. */
function startCli(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, 'proxy', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URL printed:\n${out}`));
    }, 15_000);
    const collect = (b: Buffer): void => {
      out += b.toString();
      const m = /wsvia proxy listening on (https?:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[2]), url: m[1] as string, output: () => out, exited });
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    exited.then(
      (code) => {
        clearTimeout(timer);
        reject(new Error(`exited ${code}:\n${out}`));
      },
      (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))),
    );
  });
}

function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'proxy', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

describe('wsvia proxy (the command)', () => {
  let echo: EchoServer;
  const running: ChildProcess[] = [];
  before(async () => {
    echo = await startEchoServer();
  });
  after(async () => {
    for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
    await echo.close();
  });
  const allowEcho = (): string[] => ['--allow', '127.0.0.1', '--allow-ports', String(echo.port)];

  it('prints its URL with --port 0, and on SIGTERM lets open tunnels finish before exiting 0', async () => {
    const p = await startCli([...allowEcho(), '--drain-timeout', '20']);
    running.push(p.child);
    const a = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(a.head.status, 200);
    p.child.kill('SIGTERM');
    await until('the proxy to start draining', () => /SIGTERM, draining 1 tunnels/.test(p.output()));
    assert.equal(p.child.exitCode, null, 'still running while a tunnel is open');
    // The open tunnel still works: an HTTP request to the echo server answers 426.
    a.socket.write(`GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const text = (await readAll(a.socket, a.rest)).toString();
    assert.match(text, /^HTTP\/1\.1 426/);
    a.socket.destroy();
    assert.equal(await p.exited, 0);
    assert.match(p.output(), /SIGTERM, draining 1 tunnels/);
  });

  it('says on stderr which relay runs and why (splice by default where it loads, js with --relay js)', async () => {
    const support = spliceSupport();
    const auto = await startCli(allowEcho());
    running.push(auto.child);
    await until('the relay line', () => /wsvia proxy relay: /.test(auto.output()));
    if (support.available) assert.match(auto.output(), /wsvia proxy relay: splice \(zero-copy splice\(2\), /);
    else assert.match(auto.output(), /wsvia proxy relay: js \(/);
    auto.child.kill('SIGTERM');
    await auto.exited;
    const js = await startCli([...allowEcho(), '--relay', 'js']);
    running.push(js.child);
    await until('the relay line', () => /wsvia proxy relay: js \(--relay js\)/.test(js.output()));
    js.child.kill('SIGTERM');
    await js.exited;
  });

  it('--relay splice where the native relay cannot load exits 2 and says why; a bad --relay exits 2', async () => {
    const off = await runCli(['--port', '0', '--relay', 'splice'], { ...process.env, WSVIA_SPLICE: 'off' });
    assert.equal(off.code, 2);
    assert.match(off.out, /--relay splice cannot run here: turned off by WSVIA_SPLICE=off/);
    const bad = await runCli(['--port', '0', '--relay', 'fast']);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--relay expects js, splice or auto, got "fast"/);
  });

  it('closes tunnels still open when --drain-timeout expires', async () => {
    const p = await startCli([...allowEcho(), '--drain-timeout', '0.3']);
    running.push(p.child);
    const a = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(a.head.status, 200);
    p.child.kill('SIGTERM');
    await readAll(a.socket, a.rest);
    assert.equal(await p.exited, 0);
  });

  it('reads a YAML config file, flags winning over it', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'wsvia-proxy.yaml');
    fs.writeFileSync(
      file,
      `allow:\n  - 127.0.0.1\nallow-ports: "${echo.port}"\nmax-tunnels: 5\nauth:\n  - dave:pw\n`,
    );
    const p = await startCli(['--config', file]);
    running.push(p.child);
    const missing = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(missing.head.status, 407);
    missing.socket.destroy();
    const ok = await request(
      p.port,
      connectRequest(`127.0.0.1:${echo.port}`, [
        `Proxy-Authorization: Basic ${Buffer.from('dave:pw').toString('base64')}`,
      ]),
    );
    assert.equal(ok.head.status, 200);
    ok.socket.destroy();
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0);
  });

  it('a config error names the file and the key, and exits 2', async () => {
    const dir = tempDir();
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'max-tunnels: lots\n');
    const r = await runCli(['--config', bad]);
    assert.equal(r.code, 2);
    assert.match(r.out, /bad\.yaml: max-tunnels: .*whole number/);
    const typo = path.join(dir, 'typo.yaml');
    fs.writeFileSync(typo, 'alow-ports: 443\n');
    const t = await runCli(['--config', typo]);
    assert.equal(t.code, 2);
    assert.match(t.out, /typo\.yaml: alow-ports: unknown key/);
    const flag = await runCli(['--max-tunnels', '-3']);
    assert.equal(flag.code, 2);
  });

  it('--workers 2: one URL, tunnels work, SIGTERM stops every worker', async () => {
    const p = await startCli([...allowEcho(), '--workers', '2', '--drain-timeout', '1']);
    running.push(p.child);
    for (let i = 0; i < 4; i++) {
      const a = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(a.head.status, 200);
      a.socket.destroy();
    }
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0);
  });
});
