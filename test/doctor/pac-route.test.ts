/** The doctor follows a PAC file like connect does: failover past a dead proxy, and the route step says which entry. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { startBlackhole, type Blackhole } from '../helpers/blackhole.js';
import { startNpmProxy } from '../helpers/npm-proxy.js';
import type { RunningProxy } from '../helpers/process.js';

let echo: EchoServer;
let live: RunningProxy & { requests: string[] };
let dead: Blackhole;
let pacFile: string;
before(async () => {
  [echo, live, dead] = await Promise.all([startEchoServer({ port: 0 }), startNpmProxy(), startBlackhole()]);
  pacFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wsvia-pac-')), 'proxy.pac');
  fs.writeFileSync(
    pacFile,
    `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${dead.port}; PROXY 127.0.0.1:${live.port}"; }\n`,
  );
});
after(async () => {
  dead.stop();
  await Promise.all([echo.close(), live.stop()]);
});

test('--pac: the route step names the PAC entry used after the dead one, and the tunnel goes through it', async () => {
  const r = await runDoctor(echo.url, { pac: pacFile, timeouts: { tcp: 500 } });
  assert.equal(r.ok, true, JSON.stringify(r, null, 1));
  const route = r.steps.find((s) => s.step === 'route');
  assert.match(route?.detail ?? '', new RegExp(`PAC .*entry 2 of 2.*127\\.0\\.0\\.1:${live.port}`));
  assert.ok(r.steps.some((s) => s.step === 'proxy' && s.ok));
  assert.deepEqual(live.requests, [`CONNECT 127.0.0.1:${echo.port}`]);
});
