import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseRoute, describeHops, routeHops } from '../../src/route/choose.js';

const target = { secure: true, host: 'echo.example', port: 443 };

describe('chooseRoute with chains and preproxies', () => {
  it('a proxy list is a chain, described in order', () => {
    const r = chooseRoute(target, { proxy: ['socks5h://a:1080', 'http://b:3128'] });
    assert.deepEqual(
      routeHops(r).map((h) => h.display),
      ['socks5h://a:1080', 'http://b:3128'],
    );
    assert.equal(r.proxy?.display, 'http://b:3128');
    assert.equal(r.reason, 'chain socks5h://a:1080 -> http://b:3128 from the options');
  });

  it('a preproxy goes in front of the environment proxy, and says so', () => {
    const r = chooseRoute(target, {
      preproxy: 'socks5://u:p@s:1080',
      env: { wss: { name: 'https_proxy', value: 'http://p:3128' } },
    });
    assert.equal(describeHops(routeHops(r)), 'socks5://u:***@s:1080 -> http://p:3128');
    assert.equal(
      r.reason,
      'proxy http://p:3128 from https_proxy; through preproxy socks5://u:***@s:1080 first',
    );
  });

  it('a preproxy alone carries a direct route', () => {
    const r = chooseRoute(target, { proxy: false, preproxy: 'socks5h://s:1080' });
    assert.equal(r.proxy?.display, 'socks5h://s:1080');
    assert.match(r.reason, /^direct: proxy disabled; through preproxy socks5h:\/\/s:1080 first$/);
  });

  it('NO_PROXY still applies to the proxy behind a preproxy', () => {
    const r = chooseRoute(target, {
      proxy: 'http://p:3128',
      noProxy: '.example',
      preproxy: 'socks5h://s:1080',
    });
    assert.equal(describeHops(routeHops(r)), 'socks5h://s:1080');
    assert.equal(r.source, 'no-proxy');
  });

  it('a single proxy keeps the single-hop shape', () => {
    const r = chooseRoute(target, { proxy: 'socks4a://s' });
    assert.equal(r.hops, undefined);
    assert.equal(r.proxy?.port, 1080);
  });

  it('an empty chain is refused', () => {
    assert.throws(() => chooseRoute(target, { proxy: [] }), { code: 'INVALID_ARGUMENT' });
  });
});
