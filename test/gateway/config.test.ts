import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { configFromNode, parseRouteFlag, parseSniFlag } from '../../src/gateway/config.js';

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
      'listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ws://x/sub }]',
      /path and query go through unchanged/,
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
    assert.throws(() => parseRouteFlag('/api'), /expected PATH=UPSTREAM/);
    assert.deepEqual(parseSniFlag('*.Example.com=127.0.0.1:8443'), {
      name: '*.example.com',
      host: '127.0.0.1',
      port: 8443,
    });
    assert.throws(() => parseSniFlag('a.com=nohost'), /expected HOST:PORT/);
  });
});
