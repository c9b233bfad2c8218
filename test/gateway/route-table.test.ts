import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRouteFlag } from '../../src/gateway/config.js';
import { upstreamHeaders } from '../../src/gateway/forwarded.js';
import { NO_ROUTE_OPTIONS } from '../../src/gateway/route-config.js';
import {
  applyHeaderOptions,
  requestHost,
  RouteTable,
  upstreamTarget,
} from '../../src/gateway/route-table.js';
import { parseCidr, type Cidr } from '../../src/route/cidr.js';

describe('RouteTable', () => {
  const t = new RouteTable(
    ['/=ws://a:1', '/chat=ws://b:1', '/chat/admin=ws://c:1', '/static/=http://d:1'].map(parseRouteFlag),
  );
  it('picks the longest prefix at a segment boundary', () => {
    assert.equal(t.match('/chat')?.path, '/chat');
    assert.equal(t.match('/chat?room=1')?.path, '/chat');
    assert.equal(t.match('/chat/x')?.path, '/chat');
    assert.equal(t.match('/chat/admin/x')?.path, '/chat/admin');
    assert.equal(t.match('/chatter')?.path, '/');
    assert.equal(t.match('/static/app.js')?.path, '/static/');
  });
  it('matches nothing without a catch-all', () => {
    assert.equal(new RouteTable([parseRouteFlag('/api=ws://a:1')]).match('/other'), undefined);
  });
});

describe('RouteTable: hosts', () => {
  const t = new RouteTable(
    [
      '/=ws://any:1',
      '/ws=ws://any-ws:1',
      'app.example.com/=ws://app:1',
      '*.tenant.example.com/ws=ws://tenant:1',
      '*.example.com/=ws://wild:1',
      '*.b.tenant.example.com/=ws://deeper:1',
    ].map(parseRouteFlag),
  );
  const up = (target: string, host?: string) => t.match(target, host)?.upstreams[0]?.host;
  it('matches exact names case-insensitively, ignoring the port and a final dot', () => {
    assert.equal(up('/x', 'App.Example.COM:8443'), 'app');
    assert.equal(up('/x', 'app.example.com.'), 'app');
    assert.equal(up('/x', 'app.example.com'), 'app');
  });
  it('prefers the most specific host, then the longest path', () => {
    // An exact host beats the hostless /ws even though /ws is the longer path.
    assert.equal(up('/ws', 'app.example.com'), 'app');
    assert.equal(up('/ws/room', 'a.tenant.example.com'), 'tenant');
    // The longer suffix wins over a shorter one.
    assert.equal(up('/ws', 'x.b.tenant.example.com'), 'deeper');
    // No path match under the most specific host: the next host down that matches.
    assert.equal(up('/other', 'a.tenant.example.com'), 'wild');
    assert.equal(up('/ws', 'elsewhere.org'), 'any-ws');
  });
  it('a wildcard needs at least one label in front; no Host matches hostless routes only', () => {
    assert.equal(up('/', 'example.com'), 'any');
    assert.equal(up('/ws'), 'any-ws');
    assert.equal(up('/', '[::1]:80'), 'any');
  });
  it('reads Host headers', () => {
    assert.equal(requestHost('Example.com:80'), 'example.com');
    assert.equal(requestHost('[::1]:8080'), '::1');
    assert.equal(requestHost(''), undefined);
  });
});

describe('upstreamTarget (nginx proxy_pass semantics)', () => {
  it('replaces the matched prefix with the upstream URL path, keeping the query', () => {
    const r = parseRouteFlag('/api/=http://u/v2/');
    assert.equal(upstreamTarget(r, r.upstreams[0]!, '/api/x?q=1'), '/v2/x?q=1');
    const root = parseRouteFlag('/app=http://u/');
    assert.equal(upstreamTarget(root, root.upstreams[0]!, '/app/x'), '//x');
    assert.equal(upstreamTarget(root, root.upstreams[0]!, '/app'), '/');
  });
  it('passes the path unchanged when the upstream URL has none', () => {
    const r = parseRouteFlag('/api/=http://u:8080');
    assert.equal(r.upstreams[0]?.path, undefined);
    assert.equal(upstreamTarget(r, r.upstreams[0]!, '/api/x?q'), '/api/x?q');
  });
});

describe('applyHeaderOptions', () => {
  it('removes, then sets (replacing any field of the same name)', () => {
    const out = applyHeaderOptions(
      [
        ['Host', 'h'],
        ['Cookie', 'a=1'],
        ['x-env', 'dev'],
      ],
      { ...NO_ROUTE_OPTIONS, setHeaders: [['X-Env', 'prod']], removeHeaders: ['cookie'] },
    );
    assert.deepEqual(out, [
      ['Host', 'h'],
      ['X-Env', 'prod'],
    ]);
  });
});

describe('upstreamHeaders', () => {
  const incoming: [string, string][] = [
    ['Host', 'app.example.com'],
    ['X-Forwarded-For', '6.6.6.6'],
    ['Forwarded', 'for=6.6.6.6'],
    ['Cookie', 'a=1'],
    ['Connection', 'Upgrade, X-Secret'],
    ['X-Secret', 'hop'],
    ['Upgrade', 'websocket'],
  ];
  const trust: Cidr[] = [parseCidr('10.0.0.0/8') as Cidr];
  it('drops forwarding fields from untrusted peers and hop-by-hop fields', () => {
    const h = upstreamHeaders(
      incoming,
      { address: '192.0.2.1', proto: 'http' },
      { trusted: false, upgrade: true },
    );
    const get = (n: string) => h.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
    assert.deepEqual(get('x-forwarded-for'), ['192.0.2.1']);
    assert.deepEqual(get('forwarded'), ['for=192.0.2.1;proto=http;host=app.example.com']);
    assert.deepEqual(get('x-forwarded-host'), ['app.example.com']);
    assert.deepEqual(get('x-secret'), []);
    assert.deepEqual(get('cookie'), ['a=1']);
    assert.deepEqual(get('connection'), ['Upgrade']);
    assert.deepEqual(get('upgrade'), ['websocket']);
    void trust;
  });
  it('appends to forwarding fields from trusted peers, IPv6 quoted (RFC 7239 §6)', () => {
    const h = upstreamHeaders(
      incoming,
      { address: '::1', proto: 'https' },
      { trusted: true, upgrade: false },
    );
    const get = (n: string) => h.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
    assert.deepEqual(get('x-forwarded-for'), ['6.6.6.6, ::1']);
    assert.deepEqual(get('forwarded'), ['for=6.6.6.6, for="[::1]";proto=https;host=app.example.com']);
    assert.deepEqual(get('connection'), ['close']);
  });
});
