/**
 * Routing and balancing through the real `wsvia gateway` command with real upstreams: hosts, path rewrites,
 * weights, the three balancers, per-route options, rate-per-client, and what /routes and --help say about them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { makeSelfSigned } from '../../src/echo/self-signed.js';
import { runCli } from '../helpers/cli.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { closed, echo, openWs, refusedStatus, startUpstream, type Upstream } from './peers.js';

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The upstream's report (name, url, headers) when it answered. */
  readonly report: { name?: string; url?: string; headers?: Record<string, string> };
}

/** One GET on a fresh connection (each is a new connection for admission and rate limits). */
function get(
  base: string,
  target: string,
  headers: Record<string, string> = {},
  localAddress?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${base}${target}`,
      { headers, agent: false, ...(localAddress ? { localAddress } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          let report: Reply['report'] = {};
          try {
            report = JSON.parse(body) as Reply['report'];
          } catch {
            // an error page from the gateway
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, report });
        });
      },
    );
    req.on('error', reject);
  });
}

/** The admin address a gateway printed (its line may come in a later chunk than the listening one). */
async function adminUrl(gw: RunningServer): Promise<string> {
  const line = /wsvia gateway admin on (http:\/\/[\d.]+:\d+)/;
  await until('the admin line', () => line.test(gw.stderr()));
  return line.exec(gw.stderr())?.[1] as string;
}

async function routesPage(gw: RunningServer): Promise<Record<string, unknown>> {
  return (await (await fetch(`${await adminUrl(gw)}/routes`)).json()) as Record<string, unknown>;
}

/** The routing section's YAML example in docs/gateway.md: the one that sets rate-per-client. */
export function docsRoutingExample(): string {
  const docs = fs.readFileSync('docs/gateway.md', 'utf8');
  const blocks = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const found = blocks.find((b) => /^rate-per-client:/m.test(b));
  if (!found) throw new Error('docs/gateway.md has no YAML example with rate-per-client');
  return found;
}

describe('gateway routing (the command, real upstreams)', () => {
  let a: Upstream;
  let b: Upstream;
  let c: Upstream;
  let dir: string;
  const running: RunningServer[] = [];
  const start = async (args: string[]): Promise<RunningServer> => {
    const gw = await startServerCli('gateway', [
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      ...args,
    ]);
    running.push(gw);
    return gw;
  };
  const config = (name: string, yaml: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, yaml);
    return file;
  };
  before(async () => {
    [a, b, c] = await Promise.all([startUpstream('a'), startUpstream('b'), startUpstream('c')]);
    dir = tempDir();
  });
  after(async () => {
    await Promise.all(running.map((g) => g.stop()));
    await Promise.all([a, b, c].map((u) => u.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('routes by exact and wildcard host, then path, and a path on the upstream replaces the prefix', async () => {
    const gw = await start([
      '--route',
      `App.Localtest/=${a.url}`,
      '--route',
      `*.tenant.localtest/ws=${b.url}`,
      '--route',
      `/api/=http://127.0.0.1:${c.port}/v2/`,
      '--route',
      `/=${c.url}`,
    ]);
    const on = async (host: string, target: string) => (await get(gw.url, target, { Host: host })).report;
    const app = await on('app.localtest:8080', '/ws');
    assert.equal(app.name, 'a', 'an exact host beats the hostless routes, whatever their paths');
    assert.equal(app.url, '/ws');
    const tenant = await on('eu.Tenant.localtest', '/ws/room?id=1');
    assert.equal(tenant.name, 'b');
    assert.equal(tenant.url, '/ws/room?id=1');
    assert.equal((await on('eu.tenant.localtest', '/other')).name, 'c', 'no path match: the hostless route');
    assert.equal((await on('tenant.localtest', '/ws')).name, 'c', 'a wildcard needs a label in front');
    const api = await on('anything', '/api/items?q=1');
    assert.equal(api.name, 'c');
    assert.equal(api.url, '/v2/items?q=1');
    // WebSocket upgrades take the same host and rewrite rules.
    const ws = await openWs(`${gw.url.replace('http', 'ws')}/api/live?x=2`);
    assert.equal(ws.report['url'], '/v2/live?x=2');
    ws.ws.close();
    await closed(ws.ws);
    const hosted = await openWs(`${gw.url.replace('http', 'ws')}/ws`, {
      headers: { Host: 'x.tenant.localtest' },
    });
    assert.equal(hosted.report['name'], 'b');
    hosted.ws.close();
    await closed(hosted.ws);
  });

  it('hash balancing: a dead upstream moves only its own users, and they come back when it recovers', async () => {
    const file = config(
      'hash.yaml',
      `routes:
  - path: /live
    upstream: [ { url: ${a.url}, weight: 2 }, ${b.url}, ${c.url} ]
    balance: hash
    hash-key: header:X-User
`,
    );
    const gw = await start(['--config', file, '--health-interval', '0.2']);
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const where = async (): Promise<Map<string, string>> => {
      const m = new Map<string, string>();
      for (const u of users) {
        const r = await get(gw.url, '/live', { 'X-User': u });
        assert.equal(r.status, 200);
        m.set(u, r.report.name ?? '?');
      }
      return m;
    };
    const initial = await where();
    assert.deepEqual(await where(), initial, 'the same user, the same upstream');
    const onB = users.filter((u) => initial.get(u) === 'b');
    assert.ok(onB.length > 0 && onB.length < users.length, `b has ${onB.length} of ${users.length} users`);

    const port = b.port;
    await b.close();
    const during = await where();
    for (const u of users) {
      if (initial.get(u) === 'b') assert.notEqual(during.get(u), 'b', `${u} left the dead upstream`);
      else assert.equal(during.get(u), initial.get(u), `${u} stayed where it was`);
    }

    b = await startUpstream('b', { port });
    await until('b healthy again', async () => {
      const health = (await routesPage(gw))['health'] as Record<string, string>;
      return health[b.url] === 'up';
    });
    assert.deepEqual(await where(), initial, 'every user back where it was');
  });

  it('weighted round-robin gives each upstream its weight; least-connections avoids the busy one', async () => {
    const file = config(
      'balance.yaml',
      `routes:
  - path: /rr
    upstream: [ { url: ${a.url}, weight: 3 }, ${b.url} ]
  - path: /lc
    upstream: [ ${a.url}, ${b.url} ]
    balance: least-connections
`,
    );
    const gw = await start(['--config', file]);
    const names: string[] = [];
    for (let i = 0; i < 8; i++) names.push((await get(gw.url, '/rr')).report.name ?? '?');
    assert.deepEqual(
      [names.filter((n) => n === 'a').length, names.filter((n) => n === 'b').length],
      [6, 2],
      names.join(' '),
    );

    // One WebSocket held open on one upstream: every short request goes to the other.
    const held = await openWs(`${gw.url.replace('http', 'ws')}/lc`);
    const busy = held.report['name'];
    for (let i = 0; i < 4; i++) assert.notEqual((await get(gw.url, '/lc/x')).report.name, busy);
    held.ws.close();
    await closed(held.ws);
  });

  it('per-route options: a shorter idle-timeout cuts that route only; headers set and removed; origins', async () => {
    const file = config(
      'options.yaml',
      `routes:
  - path: /short
    upstream: ${a.url}
    idle-timeout: 0.5
    allow-origin: [https://app.example]
    set-headers: { X-Env: prod }
    remove-headers: [Cookie]
  - path: /long
    upstream: ${a.url}
`,
    );
    const gw = await start(['--config', file, '--idle-timeout', '60']);
    const wsBase = gw.url.replace('http', 'ws');
    const long = await openWs(`${wsBase}/long`, { headers: { Cookie: 'sid=1' } });
    const short = await openWs(`${wsBase}/short`, { headers: { Cookie: 'sid=1' } });
    const shortHeaders = short.report['headers'] as Record<string, string>;
    assert.equal(shortHeaders['x-env'], 'prod');
    assert.equal(shortHeaders['cookie'], undefined);
    const longHeaders = long.report['headers'] as Record<string, string>;
    assert.equal(longHeaders['cookie'], 'sid=1');
    assert.equal(longHeaders['x-env'], undefined);

    assert.equal(await closed(short.ws), 1001, 'the idle route was cut with 1001');
    assert.equal(long.ws.readyState, WebSocket.OPEN, 'the other route, idle as long, is not');
    assert.equal((await echo(long.ws, 'still here')).toString(), 'still here');
    long.ws.close();
    await closed(long.ws);

    assert.equal(
      await refusedStatus(`${wsBase}/short`, { headers: { Origin: 'https://evil.example' } }),
      403,
    );
    const other = await openWs(`${wsBase}/long`, { headers: { Origin: 'https://evil.example' } });
    other.ws.close();
    await closed(other.ws);
  });

  it('rate-per-client: 429 with Retry-After past the rate, other addresses unaffected', async () => {
    const gw = await start(['--route', `/=${a.url}`, '--rate-per-client', '2']);
    const t0 = Date.now();
    const replies = await Promise.all(Array.from({ length: 10 }, () => get(gw.url, '/')));
    const elapsed = (Date.now() - t0) / 1000;
    const ok = replies.filter((r) => r.status === 200).length;
    const refused = replies.filter((r) => r.status === 429);
    assert.ok(refused.length > 0, 'some were refused');
    assert.ok(ok <= 2 + Math.ceil(elapsed * 2), `${ok} let through in ${elapsed} s at 2 a second`);
    assert.ok(Number(refused[0]?.headers['retry-after']) >= 1);
    assert.equal((await get(gw.url, '/', {}, '127.0.0.2')).status, 200, 'another address has its own bucket');
    const metrics = await (await fetch(`${await adminUrl(gw)}/metrics`)).text();
    assert.match(metrics, /wsvia_gateway_upgrades_refused_total\{reason="rate"\} [1-9]/);
  });

  it("loads the docs' routing example; /routes and --help show every route option", async () => {
    const gw = await start(['--config', config('docs.yaml', docsRoutingExample())]);
    const page = await routesPage(gw);
    assert.equal(page['rate-per-client'], 20);
    const routes = page['routes'] as Record<string, unknown>[];
    const live = routes.find((r) => r['path'] === '/live');
    assert.deepEqual(live, {
      name: '/live',
      host: null,
      path: '/live',
      upstream: [
        { url: 'ws://10.0.0.11:9000', weight: 3 },
        { url: 'ws://10.0.0.12:9000', weight: 1 },
      ],
      balance: 'hash',
      'hash-key': 'header:x-user',
      'idle-timeout': 30,
      'max-lifetime': null,
      ping: null,
      'ping-timeout': null,
      'allow-origin': null,
      'set-headers': { 'X-Env': 'prod' },
      'remove-headers': [],
      warm: null,
    });
    const help = await runCli(['gateway', '--help']);
    for (const key of Object.keys(live ?? {}).filter((k) => k !== 'name'))
      assert.match(help.stdout, new RegExp(`\\b${key}\\b`), `--help names ${key}`);
    assert.match(help.stdout, /--rate-per-client/);
  });
});

/** The payload of the first (unfragmented, unmasked) frame the upstream sends on an RFC 8441 stream. */
function firstFrame(stream: http2.ClientHttp2Stream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    stream.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2) return;
      let len = (buf[1] as number) & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      }
      if (buf.length >= off + len) resolve(buf.subarray(off, off + len));
    });
    stream.once('error', reject);
  });
}

describe('gateway routing over HTTP/2 (RFC 8441): :authority picks the host, options and rewrite apply', () => {
  let dir: string;
  let cert: ReturnType<typeof makeSelfSigned>;
  let a: Upstream;
  let b: Upstream;
  let gw: RunningServer;
  before(async () => {
    dir = tempDir();
    cert = makeSelfSigned('localhost');
    fs.writeFileSync(path.join(dir, 'cert.pem'), cert.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), cert.key);
    [a, b] = await Promise.all([startUpstream('a'), startUpstream('b')]);
    const file = path.join(dir, 'routes.yaml');
    fs.writeFileSync(
      file,
      `routes:
  - { host: chat.localtest, path: /chat/, upstream: '${a.url}/inner/', set-headers: { X-Route: h2 } }
  - { path: /, upstream: ${b.url} }
`,
    );
    gw = await startServerCli('gateway', [
      '--config',
      file,
      '--tls-listen',
      '127.0.0.1:0',
      '--tls-cert',
      path.join(dir, 'cert.pem'),
      '--tls-key',
      path.join(dir, 'key.pem'),
    ]);
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([a?.close(), b?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('routes an extended CONNECT by :authority, rewrites its path and sets the route headers', async () => {
    const session = http2.connect(`https://127.0.0.1:${gw.port}`, { ca: cert.cert, servername: 'localhost' });
    session.on('error', () => {});
    const open = async (authority: string, target: string) => {
      const stream = session.request({
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'https',
        ':path': target,
        ':authority': authority,
        'sec-websocket-version': '13',
      });
      const report = JSON.parse((await firstFrame(stream)).toString()) as {
        name: string;
        url: string;
        headers: Record<string, string>;
      };
      stream.close();
      return report;
    };
    try {
      const routed = await open('Chat.Localtest:443', '/chat/room?id=3');
      assert.equal(routed.name, 'a');
      assert.equal(routed.url, '/inner/room?id=3');
      assert.equal(routed.headers['x-route'], 'h2');
      const other = await open(`localhost:${gw.port}`, '/chat/room');
      assert.equal(other.name, 'b');
      assert.equal(other.url, '/chat/room');
    } finally {
      session.close();
    }
  });
});
