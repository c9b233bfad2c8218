import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config.js';
import {
  configFromNode,
  parseRouteFlag,
  parseSniFlag,
  routeKeepalive,
  routeOrigins,
  validateConfig,
} from '../../src/gateway/config.js';

function load(yaml: string) {
  return configFromNode(parseConfig(yaml, 'gw.yaml'), 'gw.yaml');
}

function fails(yaml: string, message: RegExp): void {
  assert.throws(
    () => load(yaml),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('gateway config', () => {
  it('reads every key, durations in seconds', () => {
    const c = load(`
listen: 127.0.0.1:8080
tls-listen: 127.0.0.1:8443
tls-cert: c.pem
tls-key: k.pem
routes:
  - { path: /chat, upstream: ws://127.0.0.1:9001 }
  - { path: /, upstream: [ws://127.0.0.1:9002, wss://b.internal] }
sni: [{ name: '*.example.com', backend: '127.0.0.1:9443' }]
allow-origin: [https://app.example.com]
ping: 20
admin: 127.0.0.1:9090
trust-proxy: [10.0.0.0/8]
max-connections: 1000
handshake-timeout: 2.5
idle-timeout: 0
`);
    assert.equal(c.routes.length, 2);
    assert.deepEqual(
      c.routes[1]?.upstreams.map((u) => [u.host, u.port, u.tls]),
      [
        ['127.0.0.1', 9002, false],
        ['b.internal', 443, true],
      ],
    );
    assert.equal(c.ping, 20_000);
    assert.equal(c.pingTimeout, 20_000);
    assert.equal(c.limits.handshakeTimeout, 2_500);
    assert.equal(c.limits.maxConnections, 1000);
    assert.equal(c.sni[0]?.name, '*.example.com');
  });

  it('names the key and the problem', () => {
    fails(
      'listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: 42 }]',
      /routes\[0\]\.upstream\[0\]: invalid upstream URL "42"/,
    );
    fails(
      'listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ftp://x }]',
      /must be ws:\/\/, wss:\/\/, http:\/\/ or https:\/\//,
    );
    fails('listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ws://x }]\nlimts: {}', /limts: unknown key/);
    fails(
      'listen: 127.0.0.1:1\nroutes: [{ path: chat, upstream: ws://x }]',
      /routes\[0\]\.path: a route path must start with \//,
    );
    fails(
      'listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ws://x/sub?q=1 }]',
      /no query, fragment or credentials/,
    );
    fails('routes: [{ path: /, upstream: ws://x }]', /nothing to listen on/);
    fails('listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ws://x }]\nping: -1', /ping: expects seconds/);
    fails(
      'listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ws://x }]\nsni: [{name: a.b, backend: h:1}]',
      /need a TLS listener/,
    );
    fails('listen: [', /gw\.yaml line 1/);
  });

  it('parses --route and --sni flags', () => {
    const r = parseRouteFlag('/api=http://127.0.0.1:1,https://[::1]:2');
    assert.equal(r.path, '/api');
    assert.deepEqual(
      r.upstreams.map((u) => `${u.host}:${u.port}`),
      ['127.0.0.1:1', '::1:2'],
    );
    assert.throws(() => parseRouteFlag('/api'), /expected \[HOST\]\/PATH=UPSTREAM/);
    assert.deepEqual(parseSniFlag('*.Example.com=127.0.0.1:8443'), {
      name: '*.example.com',
      host: '127.0.0.1',
      port: 8443,
    });
    assert.throws(() => parseSniFlag('a.com=nohost'), /expected HOST:PORT/);
  });

  it("loads issue 14's routing example as written (kebab-case keys, weights, hash, per-route options)", () => {
    const root = parseConfig(ISSUE_EXAMPLE, 'gw.yaml');
    const c = configFromNode(root, 'gw.yaml', { validate: false });
    assert.equal(c.ratePerClient, 20);
    const [app, tenant, api, live] = c.routes;
    assert.equal(app?.host, 'app.example.com');
    assert.equal(tenant?.host, '*.tenant.example.com');
    assert.equal(tenant?.name, '*.tenant.example.com/ws');
    assert.equal(api?.upstreams[0]?.path, '/v2/');
    assert.equal(app?.upstreams[0]?.path, undefined);
    assert.deepEqual(
      live?.upstreams.map((u) => [u.url, u.weight]),
      [
        ['ws://10.0.0.11:9000', 3],
        ['ws://10.0.0.12:9000', 1],
      ],
    );
    assert.equal(live?.balance, 'hash');
    assert.deepEqual(live?.hashKey, { kind: 'header', name: 'x-user' });
    assert.equal(live?.options.idleTimeout, 30_000);
    assert.deepEqual(live?.options.setHeaders, [['X-Env', 'prod']]);
    assert.equal(app?.balance, 'round-robin');
  });

  it('refuses the camelCase spellings, naming the key to write', () => {
    const route = (extra: string) =>
      `listen: 127.0.0.1:1\nroutes:\n  - { path: /, upstream: ws://x, ${extra} }`;
    fails(route('idleTimeout: 3'), /routes\[0\]\.idleTimeout: use idle-timeout/);
    fails(route('hashKey: client-ip, balance: hash'), /routes\[0\]\.hashKey: use hash-key/);
    fails(route('allowOrigins: [a]'), /routes\[0\]\.allowOrigins: use allow-origin/);
    fails(route('setHeaders: { a: b }'), /use set-headers/);
    fails(
      'listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ws://x }]\nratePerClient: 3',
      /ratePerClient: use rate-per-client/,
    );
  });

  it('checks route options', () => {
    const route = (extra: string) =>
      `listen: 127.0.0.1:1\nroutes:\n  - { path: /, upstream: ws://x, ${extra} }`;
    fails(
      route('balance: random'),
      /routes\[0\]\.balance: expected one of round-robin, least-connections, hash/,
    );
    fails(route('hash-key: header:X-User'), /hash-key: needs balance: hash/);
    fails(route('balance: hash, hash-key: ip'), /expected client-ip, header:NAME, cookie:NAME or query:NAME/);
    fails(route('host: "a.com:80"'), /routes\[0\]\.host: invalid host "a\.com:80"/);
    fails(route('set-headers: { Connection: close }'), /Connection is set by the gateway itself/);
    fails(route('remove-headers: [Host]'), /Host cannot be removed/);
    fails(route('set-headers: { "X-A": "a\\nb" }'), /set-headers\.X-A: expected a header value/);
    fails(
      'listen: 127.0.0.1:1\nroutes:\n  - { path: /, upstream: [{ url: ws://x, weight: 0 }] }',
      /routes\[0\]\.upstream\[0\]\.weight: must be at least 1/,
    );
    fails(
      'listen: 127.0.0.1:1\nroutes:\n  - { host: a.com, path: /, upstream: ws://x }\n  - { host: A.com, path: /, upstream: ws://y }',
      /host a\.com with path \/ appears twice/,
    );
    const c = load(route('balance: hash'));
    assert.deepEqual(c.routes[0]?.hashKey, { kind: 'client-ip' }, 'hash defaults to the client address');
  });

  it("a route's own keepalive and origins replace the top-level ones for it alone", () => {
    const routes = load(`
listen: 127.0.0.1:1
routes:
  - { path: /own, upstream: ws://x, ping: 5, idle-timeout: 1, max-lifetime: 2, allow-origin: [https://b.example] }
  - { path: /timeout, upstream: ws://x, ping-timeout: 3 }
  - { path: /, upstream: ws://x }
`);
    // The top-level values as --ping 20 --allow-origin https://a.example --idle-timeout 60 --max-lifetime 3600 set them.
    const c = {
      ...routes,
      ping: 20_000,
      pingTimeout: 20_000,
      allowOrigins: ['https://a.example'],
      limits: { ...routes.limits, idleTimeout: 60_000, maxLifetime: 3_600_000 },
    };
    const [own, timeout, plain] = c.routes;
    assert.deepEqual(routeKeepalive(c, own!), {
      ping: 5000,
      pingTimeout: 5000,
      idleTimeout: 1000,
      maxLifetime: 2000,
    });
    assert.deepEqual(routeKeepalive(c, timeout!), {
      ping: 20_000,
      pingTimeout: 3000,
      idleTimeout: 60_000,
      maxLifetime: 3_600_000,
    });
    assert.deepEqual(routeKeepalive(c, plain!), {
      ping: 20_000,
      pingTimeout: 20_000,
      idleTimeout: 60_000,
      maxLifetime: 3_600_000,
    });
    assert.deepEqual(routeOrigins(c, own!), ['https://b.example']);
    assert.deepEqual(routeOrigins(c, plain!), ['https://a.example']);
  });

  it('parses --route HOST/PATH=UP', () => {
    const r = parseRouteFlag('*.Tenant.example.com/ws=ws://127.0.0.1:1/socket');
    assert.equal(r.host, '*.tenant.example.com');
    assert.equal(r.path, '/ws');
    assert.equal(r.upstreams[0]?.path, '/socket');
    assert.throws(() => parseRouteFlag('chat=ws://x'), /a route path must start with \//);
  });
});

describe('docs/gateway.md', () => {
  it('every YAML example loads (the ones without a listener, with one added as --listen would)', () => {
    const docs = fs.readFileSync('docs/gateway.md', 'utf8');
    const blocks = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    assert.ok(blocks.length >= 3, `${blocks.length} YAML blocks`);
    for (const [i, yaml] of blocks.entries()) {
      const c = configFromNode(parseConfig(yaml, `docs block ${i}`), `docs block ${i}`, { validate: false });
      validateConfig(c.listen === undefined ? { ...c, listen: '127.0.0.1:0' } : c, `docs block ${i}`);
      assert.ok(c.routes.length > 0);
    }
  });
});

const ISSUE_EXAMPLE = `
routes:
  - { host: app.example.com, path: /, upstream: http://10.0.0.5:3000 }      # host: exact, or *.suffix
  - { host: '*.tenant.example.com', path: /ws, upstream: ws://10.0.0.6:9000 }
  - { path: /api/, upstream: http://10.0.0.7:8080/v2/ }   # a path on the upstream replaces the matched prefix (nginx)
  - path: /live
    upstream: [ { url: ws://10.0.0.11:9000, weight: 3 }, ws://10.0.0.12:9000 ]
    balance: hash                 # round-robin (default) | least-connections | hash
    hash-key: header:X-User       # client-ip | header:NAME | cookie:NAME | query:NAME
    idle-timeout: 30              # per route: idle-timeout, max-lifetime, ping, ping-timeout, allow-origin
    set-headers: { X-Env: prod }  # request headers to the upstream; remove-headers: [Cookie]
rate-per-client: 20               # new connections per second per client address (a burst of the same size); then 429
`;
