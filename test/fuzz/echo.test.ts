/**
 * Network fuzzing of the echo server (ws and wss) in process: request heads, frames after a good upgrade, raw bytes
 * and ClientHello garbage. Afterwards it still echoes, holds no socket, and nothing reached the process.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startEchoServer } from '../../src/echo/echo-server.js';
import { localhostCert } from '../helpers/certs.js';
import { fuzz, no500, RunChecks } from './harness.js';
import { clientHelloGarbage, framesAfterUpgrade, rawBytes, requestHead } from './inputs.js';
import { captureClientHello, echoes } from './peers.js';

describe('fuzz: echo server', () => {
  for (const tls of [false, true]) {
    it(`${tls ? 'wss' : 'ws'}: heads, frames and raw bytes leave it echoing, with no socket held`, async () => {
      const checks = new RunChecks();
      const echo = await startEchoServer(tls ? { tls: localhostCert() } : {});
      try {
        const hello = await captureClientHello();
        const ep = { port: echo.port, tls };
        let n = await fuzz({
          endpoint: ep,
          input: requestHead(['/', '/x?y']),
          runs: tls ? 8 : 25,
          judge: no500,
        });
        const frames = framesAfterUpgrade('/', [undefined, 'chat']);
        n += await fuzz({ endpoint: ep, input: frames, runs: tls ? 8 : 25, judge: no500 });
        const garbage = tls ? clientHelloGarbage(hello) : rawBytes;
        n += await fuzz({ endpoint: { port: echo.port }, input: garbage, runs: 8 });
        await echoes(echo.url);
        await checks.verify([]);
        assert.ok(n >= 100, `only ${n} connections`);
      } finally {
        await echo.close();
      }
    });
  }
});
