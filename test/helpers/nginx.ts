/**
 * nginx on loopback as a WebSocket reverse proxy in front of one upstream, with or without the Upgrade and
 * Connection headers forwarded (the classic misconfiguration), and an optional proxy_read_timeout. Started with
 * test/helpers/process.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort, runningPeer, startPeer, tempDir, type RunningPeer } from './process.js';

export interface NginxOptions {
  readonly upstreamPort: number;
  /** Forward the Upgrade and Connection headers (the correct WebSocket configuration). */
  readonly upgradeHeaders: boolean;
  readonly readTimeoutSeconds?: number;
}

export async function startNginx(o: NginxOptions): Promise<RunningPeer> {
  const dir = tempDir('wsvia-nginx-');
  const port = await freePort();
  const upgrade = o.upgradeHeaders
    ? 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";'
    : '';
  const timeout = o.readTimeoutSeconds === undefined ? '' : `proxy_read_timeout ${o.readTimeoutSeconds}s;`;
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};
  server { listen 127.0.0.1:${port};
    location / { proxy_pass http://127.0.0.1:${o.upstreamPort}; ${upgrade} ${timeout} } } }
`,
  );
  const peer = await startPeer('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { port });
  return runningPeer(peer, port, dir, { logFile: path.join(dir, 'error.log') });
}
