import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRouteFlag } from '../../src/gateway/config.js';
import { upstreamHeaders } from '../../src/gateway/forwarded.js';
import { RouteTable } from '../../src/gateway/route-table.js';
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
