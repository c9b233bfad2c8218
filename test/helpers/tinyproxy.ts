/** tinyproxy on loopback (HTTP CONNECT, no auth), logging each connection. Started with test/helpers/process.ts. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, runningPeer, startPeer, tempDir, type RunningPeer } from './process.js';

export async function startTinyproxy(): Promise<RunningPeer> {
  const dir = tempDir('wsvia-tinyproxy-');
  const port = await freePort();
  const logFile = path.join(dir, 'tinyproxy.log');
  const conf = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 600',
    `LogFile "${logFile}"`,
    `PidFile "${dir}/tinyproxy.pid"`,
    'Allow 127.0.0.1',
    // Info includes the CONNECT lines tests look for.
    'LogLevel Info',
  ];
  fs.writeFileSync(path.join(dir, 'tinyproxy.conf'), `${conf.join('\n')}\n`);
  // tinyproxy drops privileges to `nobody`, which writes its log here.
  execFileSync('chown', ['-R', 'nobody', dir]);
  const peer = await startPeer('tinyproxy', ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { port });
  return runningPeer(peer, port, dir, { logFile });
}
