/**
 * Scale-out: a real HAProxy (Debian's) in front of two `wsvia gateway` processes, with PROXY protocol v2 and an
 * HTTP health check on each gateway's `/healthz`, and nginx (Debian's) in front of two more with X-Forwarded-For.
 * Clients' own addresses reach the upstream in X-Forwarded-For, and SIGTERM to one gateway under a steady load of
 * `wsvia connect --reconnect` clients moves every client to the other gateway without losing or duplicating one
 * numbered message. docs/scale-out.md shows these configurations.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { until } from '../helpers/eventually.js';
import { freePort, startPeer, tempDir, type Peer } from '../helpers/process.js';

const MAIN = path.resolve('dist/src/cli/main.js');
const CLIENTS = 4;

/** An upstream that echoes and records every message with the X-Forwarded-For of its connection. */
class LedgerUpstream {
  readonly server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  readonly messages: { text: string; forwardedFor: string }[] = [];

  constructor(readonly name: string) {
    this.server.on('connection', (ws, req: http.IncomingMessage) => {
      const forwardedFor = String(req.headers['x-forwarded-for'] ?? '');
      ws.on('message', (m: Buffer) => {
        this.messages.push({ text: m.toString(), forwardedFor });
        ws.send(m.toString());
      });
    });
  }

  /** Resolves once listening (at once if it already is: each describe's upstreams are made when the file loads). */
  async ready(): Promise<void> {
    if (this.server.address() === null) await once(this.server, 'listening');
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const c of this.server.clients) c.terminate();
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface GatewayProcess {
  readonly peer: Peer;
  readonly port: number;
  readonly adminPort: number;
}

async function startGateway(
  upstream: LedgerUpstream,
  clientFrom: readonly string[],
): Promise<GatewayProcess> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const args = [
    MAIN,
    'gateway',
    '--listen',
    `127.0.0.1:${port}`,
    '--route',
    `/=${upstream.url}`,
    ...clientFrom,
  ];
  args.push('--admin', `127.0.0.1:${adminPort}`, '--drain-timeout', '6', '--drain-spread', '1');
  const peer = await startPeer(process.execPath, args, { port });
  return { peer, port, adminPort };
}

interface FrontEnd {
  readonly name: string;
  /** How the gateways learn the client's address from this front end. */
  readonly gatewayFlags: readonly string[];
  /** The client address the upstream sees in X-Forwarded-For for a client on 127.0.0.7. */
  readonly forwardedFor: string;
  start(port: number, gateways: readonly GatewayProcess[], dir: string): Promise<Peer>;
}

const HAPROXY: FrontEnd = {
  name: 'HAProxy (PROXY v2, /healthz checks)',
  gatewayFlags: ['--proxy-protocol'],
  forwardedFor: '127.0.0.7',
  async start(port, gateways, dir) {
    fs.writeFileSync(path.join(dir, 'haproxy.cfg'), haproxyConfig(port, gateways, dir));
    const peer = await startPeer('haproxy', ['-f', path.join(dir, 'haproxy.cfg')], { port });
    // Both gateways passed their health checks before any client comes.
    await until('HAProxy sees both gateways UP', async () => {
      const stat = await haproxyCommand(path.join(dir, 'haproxy.sock'), 'show stat');
      return (
        stat.split('\n').filter((l) => l.startsWith('gateways,g') && l.split(',')[17] === 'UP').length === 2
      );
    });
    return peer;
  },
};

const NGINX: FrontEnd = {
  name: 'nginx (X-Forwarded-For, proxy_next_upstream)',
  gatewayFlags: ['--trust-proxy', '127.0.0.1/32'],
  // nginx adds the client; the gateway, trusting nginx, appends nginx's own address.
  forwardedFor: '127.0.0.7, 127.0.0.1',
  start(port, gateways, dir) {
    fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(port, gateways, dir));
    return startPeer('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { port });
  },
};

function nginxConfig(port: number, gateways: readonly GatewayProcess[], dir: string): string {
  return `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};
  upstream gateways { ${gateways.map((g) => `server 127.0.0.1:${g.port} max_fails=1 fail_timeout=30s;`).join(' ')} }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 3600s;
      proxy_next_upstream error timeout;
    }
  }
}
`;
}

/** One command to HAProxy's stats socket; resolves with its answer. */
function haproxyCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => resolve(''));
    s.on('close', () => resolve(out));
    s.end(`${command}\n`);
  });
}

function haproxyConfig(port: number, gateways: readonly GatewayProcess[], dir: string): string {
  return [
    'global',
    '  maxconn 200',
    `  stats socket ${dir}/haproxy.sock`,
    'defaults',
    '  mode tcp',
    '  retries 3',
    '  option redispatch',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend gateways',
    'backend gateways',
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    '  http-check expect status 200',
    ...gateways.map(
      (g, i) =>
        `  server g${i + 1} 127.0.0.1:${g.port} send-proxy-v2 check port ${g.adminPort} inter 100ms fall 1 rise 2`,
    ),
    '',
  ].join('\n');
}

/** One `wsvia connect --reconnect` process fed numbered lines on stdin; what it printed, line by line. */
class NumberedClient {
  readonly child: ChildProcessWithoutNullStreams;
  readonly echoed: string[] = [];
  next = 0;
  stderr = '';

  constructor(
    readonly id: number,
    url: string,
  ) {
    this.child = spawn(process.execPath, [MAIN, 'connect', url, '--reconnect'], {
      env: { ...process.env, NO_PROXY: '*' },
    });
    let partial = '';
    this.child.stdout.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      this.echoed.push(...lines);
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  sendNext(): void {
    this.child.stdin.write(`c${this.id}-${this.next++}\n`);
  }

  /** Whether the echo of a message numbered `n` or later came back. */
  echoedFrom(n: number): boolean {
    return this.echoed.some((l) => Number(l.split('-')[1]) >= n);
  }
}

for (const frontEnd of [HAPROXY, NGINX])
  describe(`${frontEnd.name} in front of two wsvia gateways`, { timeout: 90_000 }, () => {
    const dir = tempDir();
    const upstreams = [new LedgerUpstream('a'), new LedgerUpstream('b')];
    const gateways: GatewayProcess[] = [];
    let front: Peer;
    let port: number;

    before(async () => {
      await Promise.all(upstreams.map((u) => u.ready()));
      for (const u of upstreams) gateways.push(await startGateway(u, frontEnd.gatewayFlags));
      port = await freePort();
      front = await frontEnd.start(port, gateways, dir);
    });
    after(async () => {
      await front.stop();
      for (const g of gateways) await g.peer.stop();
      for (const u of upstreams) await u.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('the client’s own address reaches the upstream in X-Forwarded-For, and both gateways serve', async () => {
      // The front end connects from 127.0.0.1; this client from 127.0.0.7: seeing .7 proves the address was carried.
      for (let i = 0; i < 2; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { localAddress: '127.0.0.7' });
        await once(ws, 'open');
        ws.send(`xff-${i}`);
        await once(ws, 'message');
        ws.close();
        await once(ws, 'close');
      }
      const seen = upstreams.flatMap((u) => u.messages.filter((m) => m.text.startsWith('xff-')));
      assert.equal(seen.length, 2);
      for (const m of seen) assert.equal(m.forwardedFor, frontEnd.forwardedFor);
      assert.deepEqual(
        upstreams.map((u) => u.messages.some((m) => m.text.startsWith('xff-'))),
        [true, true],
        'round-robin reached both gateways',
      );
    });

    it('SIGTERM to one gateway under load: every client ends on the other, no numbered message lost or duplicated', async () => {
      const clients = Array.from(
        { length: CLIENTS },
        (_, i) => new NumberedClient(i, `ws://127.0.0.1:${port}/`),
      );
      after(() => clients.forEach((c) => c.child.kill()));
      // Bursts keep messages in flight at every moment, the close included.
      const pump = setInterval(() => clients.forEach((c) => [1, 2, 3, 4, 5].forEach(() => c.sendNext())), 5);
      try {
        await until('every client has echoes', () => clients.every((c) => c.echoedFrom(100)), 20_000);
        const [first] = gateways;
        assert.ok(first);
        const exited = once(first.peer.process, 'exit');
        first.peer.process.kill('SIGTERM');
        await exited;
        const mark = Math.max(...clients.map((c) => c.next));
        await until(
          'every client has echoes of messages sent after the first gateway exited',
          () => clients.every((c) => c.echoedFrom(mark + 100)),
          30_000,
        );
      } finally {
        clearInterval(pump);
      }
      const sent = clients.reduce((n, c) => n + c.next, 0);
      const arrived = (): number =>
        upstreams.reduce((n, u) => n + u.messages.filter((m) => m.text.startsWith('c')).length, 0);
      // A shortfall is reported below, client by client, with the numbers that never arrived.
      await until(
        'the upstreams received as many messages as were sent',
        () => arrived() >= sent,
        15_000,
      ).catch(() => {});
      for (const c of clients) {
        const mine = upstreams
          .flatMap((u) => u.messages.map((m) => m.text))
          .filter((t) => t.startsWith(`c${c.id}-`))
          .map((t) => Number(t.split('-')[1]));
        const counts = new Map<number, number>();
        for (const n of mine) counts.set(n, (counts.get(n) ?? 0) + 1);
        const lost = [...Array(c.next).keys()].filter((n) => !counts.has(n));
        const duplicated = [...counts].filter(([, k]) => k > 1).map(([n]) => n);
        assert.deepEqual(
          { client: c.id, lost, duplicated },
          { client: c.id, lost: [], duplicated: [] },
          c.stderr,
        );
        // The last messages went through the second gateway (its upstream is b).
        const last = `c${c.id}-${c.next - 1}`;
        assert.ok(
          upstreams[1]?.messages.some((m) => m.text === last),
          `${last} reached upstream b`,
        );
      }
    });
  });
