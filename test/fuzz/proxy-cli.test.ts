/**
 * A smaller fuzz run against the real `wsvia proxy` process, to prove the process itself survives what the
 * in-process runs throw at the classes: it keeps running, tunnels afterwards, reports no tunnel open on /metrics,
 * printed no stack trace, and its resident memory stays bounded.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { until } from '../helpers/eventually.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { fuzz, serverJudge } from './harness.js';
import { rawBytes, requestHead } from './inputs.js';
import fc from 'fast-check';

/** Resident memory of `pid` in bytes (Linux /proc). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

async function metric(adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{}`));
  assert.ok(line !== undefined, `${name} is not on /metrics`);
  return Number(line.split(' ').at(-1));
}

describe('fuzz: the wsvia proxy process', () => {
  let echo: TcpPeer;
  let proxy: RunningServer;
  let adminUrl: string;
  before(async () => {
    echo = await startTcpEcho();
    proxy = await startServerCli('proxy', [
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--allow-private',
      '--allow-ports',
      '*',
      '--admin',
      '127.0.0.1:0',
    ]);
    await until('the admin line', () => /admin on http:\/\/\S+/.test(proxy.stderr()), 10_000);
    adminUrl = (/admin on (http:\/\/[^\s]+)/.exec(proxy.stderr())?.[1] ?? '').replace(/\/$/, '');
  });
  after(async () => {
    await proxy.stop();
    await echo.close();
  });

  it('survives fuzzed heads and raw bytes, then tunnels, with no tunnel left open and bounded RSS', async () => {
    const pid = proxy.process.pid ?? 0;
    const before = rss(pid);
    const targets = [
      `127.0.0.1:${echo.port}`,
      `http://127.0.0.1:${echo.port}/`,
      '127.0.0.1:1',
      'nowhere.invalid:80',
    ];
    const input = fc.oneof(
      { weight: 4, arbitrary: requestHead(targets) },
      { weight: 1, arbitrary: rawBytes },
    );
    const n = await fuzz({ endpoint: { port: proxy.port }, input, runs: 30, judge: serverJudge });
    assert.ok(n >= 100, `only ${n} connections`);
    assert.equal(proxy.process.exitCode, null, `the process exited:\n${proxy.stderr()}`);
    // A tunnel through the process still works.
    const s = net.connect({ host: '127.0.0.1', port: proxy.port });
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    s.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\nping`);
    await until('the echo through the tunnel', () => got.endsWith('ping'), 10_000);
    assert.match(got, /^HTTP\/1\.1 200 /);
    s.destroy();
    await until(
      'no tunnel open',
      async () => (await metric(adminUrl, 'wsvia_proxy_tunnels_active')) === 0,
      20_000,
    );
    assert.doesNotMatch(proxy.stderr(), /^\s+at /m, 'a stack trace was printed');
    const growth = rss(pid) - before;
    assert.ok(growth < 96 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
  });
});
