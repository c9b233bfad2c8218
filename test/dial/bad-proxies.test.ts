import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadProxyList } from '../../src/dial/bad-proxies.js';

describe('BadProxyList', () => {
  it('keeps a proxy bad for its time to live, then forgets it', () => {
    let now = 1_000;
    const list = new BadProxyList({ ttlMs: 500, now: () => now });
    list.mark('http://a:1', 'PROXY_CONNECT_FAILED');
    assert.deepEqual(list.get('http://a:1'), {
      proxy: 'http://a:1',
      since: 1_000,
      until: 1_500,
      reason: 'PROXY_CONNECT_FAILED',
    });
    now = 1_499;
    assert.ok(list.get('http://a:1'));
    now = 1_500;
    assert.equal(list.get('http://a:1'), undefined);
    assert.equal(list.size, 0);
  });

  it('clear() forgets a proxy that worked', () => {
    const list = new BadProxyList();
    list.mark('socks5h://b:2', 'TCP_TIMEOUT');
    list.clear('socks5h://b:2');
    assert.equal(list.get('socks5h://b:2'), undefined);
  });

  it('is bounded: the oldest entries go first', () => {
    const list = new BadProxyList();
    for (let i = 0; i < 1100; i++) list.mark(`http://p${i}:1`, 'x');
    assert.equal(list.size, 1000);
    assert.equal(list.get('http://p0:1'), undefined);
    assert.ok(list.get('http://p1099:1'));
  });
});
