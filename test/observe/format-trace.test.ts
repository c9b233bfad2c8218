import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTraceEvent } from '../../src/observe/format-trace.js';
import { Tracer, type TraceRecord } from '../../src/observe/trace.js';

describe('formatTraceEvent', () => {
  it('renders each kind of event', () => {
    const cases: [TraceRecord, string][] = [
      [
        { type: 'route', text: 'proxy http://p:3128 from https_proxy', proxy: 'http://p:3128', attempt: 1 },
        '* route: proxy http://p:3128 from https_proxy',
      ],
      [
        { type: 'dns', host: 'p', address: '127.0.0.1', ms: 1.25, attempt: 1 },
        '* dns: p is 127.0.0.1 (1.3 ms)',
      ],
      [
        { type: 'tcp', to: 'proxy', address: '127.0.0.1', port: 3128, ms: 2, attempt: 1 },
        '* tcp: connected to proxy 127.0.0.1:3128 (2.0 ms)',
      ],
      [
        { type: 'tcp', to: 'server', address: '::1', port: 443, ms: 0.04, attempt: 1 },
        '* tcp: connected to server [::1]:443 (0.0 ms)',
      ],
      [
        {
          type: 'tls',
          to: 'server',
          servername: 'echo.example',
          protocol: 'TLSv1.3',
          alpn: 'http/1.1',
          subject: 'CN=echo.example',
          issuer: 'CN=Test CA',
          authorized: true,
          ms: 5,
          attempt: 1,
        },
        '* tls: TLSv1.3 with server (sni echo.example), alpn http/1.1, certificate CN=echo.example issued by CN=Test CA (5.0 ms)',
      ],
      [
        {
          type: 'tls',
          to: 'proxy',
          servername: undefined,
          protocol: null,
          alpn: false,
          subject: undefined,
          issuer: undefined,
          authorized: false,
          ms: 5,
          attempt: 1,
        },
        '* tls: TLS with proxy [not verified] (5.0 ms)',
      ],
      [
        {
          type: 'head',
          from: 'client',
          to: 'proxy',
          text: 'CONNECT a:443 HTTP/1.1\nHost: a:443',
          ms: 3.14159,
          attempt: 1,
        },
        'client > proxy  (3.1 ms)\nCONNECT a:443 HTTP/1.1\nHost: a:443\n',
      ],
      [{ type: 'open', ms: 10, attempt: 2 }, '* open: WebSocket open (10.0 ms)'],
      [
        { type: 'note', text: 'retrying on a new connection', ms: 7, attempt: 1 },
        '* retrying on a new connection (7.0 ms)',
      ],
    ];
    for (const [event, want] of cases) assert.equal(formatTraceEvent(event), want);
  });
});

describe('Tracer', () => {
  it('delivers events with the attempt number only to an active callback', () => {
    const got: TraceRecord[] = [];
    const t = new Tracer((e) => got.push(e));
    assert.ok(t.active);
    t.emit({ type: 'open', ms: 1 });
    assert.deepEqual(got, [{ type: 'open', ms: 1, attempt: t.attempt }]);
    const t2 = new Tracer();
    assert.ok(t2.attempt > t.attempt);
    assert.equal(t2.active, false);
    t2.emit({ type: 'open', ms: 1 });
    assert.ok(t.elapsed() >= 0);
  });
});
