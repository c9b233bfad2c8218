import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseRoute, routeConfigFromEnv, type RouteTarget } from '../../src/route/choose.js';
import { parseProxyUrl } from '../../src/route/proxy-url.js';
import { catchWsvia } from '../helpers/bytes.js';

const WS: RouteTarget = { secure: false, host: 'echo.example', port: 80 };
const WSS: RouteTarget = { secure: true, host: 'echo.example', port: 443 };

function route(
  target: RouteTarget,
  env: Record<string, string | undefined>,
  extra: Parameters<typeof chooseRoute>[1] = {},
) {
  return chooseRoute(target, { ...extra, env: routeConfigFromEnv(env) });
}

describe('routeConfigFromEnv + chooseRoute precedence (curl)', () => {
  it('ws uses ws_proxy, then http_proxy, then all_proxy; wss uses wss_proxy, then https_proxy, then all_proxy', () => {
    const full = {
      ws_proxy: 'http://ws:1',
      WS_PROXY: 'http://WS:1',
      wss_proxy: 'http://wss:1',
      WSS_PROXY: 'http://WSS:1',
      http_proxy: 'http://http:1',
      HTTP_PROXY: 'http://HTTP:1',
      https_proxy: 'http://https:1',
      HTTPS_PROXY: 'http://HTTPS:1',
      all_proxy: 'http://all:1',
      ALL_PROXY: 'http://ALL:1',
    };
    const order = {
      ws: ['ws_proxy', 'WS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'],
      wss: ['wss_proxy', 'WSS_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'],
    } as const;
    for (const [kind, target] of [
      ['ws', WS],
      ['wss', WSS],
    ] as const) {
      const env: Record<string, string> = { ...full };
      for (const name of order[kind]) {
        const d = route(target, env);
        assert.equal(d.variable, name, `${kind}: ${Object.keys(env).join(',')}`);
        assert.equal(d.source, 'environment');
        assert.equal(d.proxy?.host, name.replace('_proxy', '').replace('_PROXY', '').toLowerCase());
        assert.match(d.reason, new RegExp(`from ${name}`));
        delete env[name];
      }
      const d = route(target, env);
      assert.equal(d.proxy, null);
      assert.equal(d.source, 'direct');
    }
  });

  it('never uses the other scheme’s variable', () => {
    assert.equal(route(WS, { https_proxy: 'http://p:1' }).proxy, null);
    assert.equal(route(WSS, { http_proxy: 'http://p:1' }).proxy, null);
    assert.equal(route(WSS, { ws_proxy: 'http://p:1' }).proxy, null);
  });

  it('lowercase wins over uppercase', () => {
    const d = route(WSS, { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:1' });
    assert.equal(d.proxy?.host, 'lower');
    assert.equal(d.variable, 'https_proxy');
  });

  it('ignores empty and blank values', () => {
    const d = route(WSS, { https_proxy: '', HTTPS_PROXY: '  ', all_proxy: 'http://all:1' });
    assert.equal(d.variable, 'all_proxy');
    assert.equal(route(WS, { http_proxy: '' }).proxy, null);
    assert.deepEqual(routeConfigFromEnv({ no_proxy: '', NO_PROXY: 'x.test' }).noProxy, {
      name: 'NO_PROXY',
      value: 'x.test',
    });
  });

  it('an explicit proxy option wins over the environment; false means direct', () => {
    const env = { https_proxy: 'http://env:1', no_proxy: '' };
    const d = route(WSS, env, { proxy: 'http://opt:2' });
    assert.equal(d.proxy?.host, 'opt');
    assert.equal(d.source, 'option');
    assert.equal(d.variable, undefined);
    assert.match(d.reason, /^proxy http:\/\/opt:2 from the options$/);
    assert.equal(route(WSS, env, { proxy: parseProxyUrl('socks5://s:3') }).proxy?.scheme, 'socks5');
    const off = route(WSS, { ...env, NO_PROXY: '*' }, { proxy: false });
    assert.equal(off.proxy, null);
    assert.equal(off.source, 'direct');
    assert.match(off.reason, /proxy disabled/);
  });

  it('ignores HTTP_PROXY under CGI (httpoxy), but not http_proxy or the others', () => {
    const cgi = { REQUEST_METHOD: 'GET', HTTP_PROXY: 'http://attacker:1' };
    assert.equal(route(WS, cgi).proxy, null);
    assert.equal(route(WS, { ...cgi, ALL_PROXY: 'http://all:1' }).proxy?.host, 'all');
    assert.equal(route(WS, { ...cgi, http_proxy: 'http://mine:1' }).proxy?.host, 'mine');
    assert.equal(route(WSS, { ...cgi, HTTPS_PROXY: 'http://s:1' }).proxy?.host, 's');
    assert.equal(route(WS, { HTTP_PROXY: 'http://p:1' }).proxy?.host, 'p');
  });

  it('says which variables were unset when going direct', () => {
    assert.match(route(WS, {}).reason, /ws_proxy, http_proxy, all_proxy unset/);
    assert.match(route(WSS, {}).reason, /wss_proxy, https_proxy, all_proxy unset/);
  });
});

describe('chooseRoute and NO_PROXY', () => {
  it('bypasses the proxy for a matching entry, naming the variable and the entry', () => {
    const d = route(
      { secure: true, host: 'api.internal.test', port: 443 },
      { https_proxy: 'http://p:1', NO_PROXY: 'a.test, .internal.test' },
    );
    assert.equal(d.proxy, null);
    assert.equal(d.source, 'no-proxy');
    assert.equal(d.noProxyEntry, '.internal.test');
    assert.equal(d.variable, 'https_proxy');
    assert.equal(d.reason, "direct: NO_PROXY entry '.internal.test' matches api.internal.test");
  });

  it('says that no entry matched when there were some', () => {
    const d = route(WSS, { https_proxy: 'http://p:1', no_proxy: 'a.test' });
    assert.equal(d.proxy?.host, 'p');
    assert.equal(d.reason, 'proxy http://p:1 from https_proxy; no no_proxy entry matched echo.example');
  });

  it('no_proxy wins over NO_PROXY; the noProxy option (even empty) over both', () => {
    const env = { https_proxy: 'http://p:1', no_proxy: 'echo.example', NO_PROXY: 'other.test' };
    assert.equal(route(WSS, env).noProxyEntry, 'echo.example');
    assert.equal(route(WSS, env, { noProxy: '' }).proxy?.host, 'p');
    const d = route(WSS, { https_proxy: 'http://p:1' }, { noProxy: 'echo.example' });
    assert.equal(d.proxy, null);
    assert.match(d.reason, /--noproxy entry 'echo\.example'/);
  });

  it('applies to an explicit proxy too (curl --noproxy with --proxy)', () => {
    const d = route(WSS, { NO_PROXY: '*' }, { proxy: 'http://opt:2' });
    assert.equal(d.proxy, null);
    assert.equal(d.source, 'no-proxy');
  });

  it('matches IPv6 and CIDR targets', () => {
    assert.equal(
      route({ secure: false, host: '::1', port: 80 }, { http_proxy: 'http://p:1', no_proxy: '::1' }).proxy,
      null,
    );
    assert.equal(
      route(
        { secure: false, host: '10.2.3.4', port: 80 },
        { http_proxy: 'http://p:1', no_proxy: '10.0.0.0/8' },
      ).proxy,
      null,
    );
  });
});

describe('chooseRoute errors and secrets', () => {
  it('an invalid proxy URL in the environment is INVALID_ARGUMENT naming the variable, password redacted', () => {
    const e = catchWsvia(() => route(WSS, { HTTPS_PROXY: 'ftp://u:s3cr3t@p:1' }));
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.match(e.message, /^HTTPS_PROXY holds an invalid proxy URL/);
    assert.doesNotMatch(e.message, /s3cr3t/);
  });

  it('never puts the password in the reason', () => {
    const d = route(WSS, { https_proxy: 'http://alice:s3cr3t@p:1', no_proxy: 'x.test' });
    assert.equal(d.proxy?.credentials?.reveal(), 's3cr3t');
    assert.doesNotMatch(`${d.reason} ${JSON.stringify(d)}`, /s3cr3t/);
    assert.match(d.reason, /alice:\*\*\*@p:1/);
  });
});
