import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Counter,
  formatValue,
  Histogram,
  LATENCY_BUCKETS,
  PROMETHEUS_CONTENT_TYPE,
  Registry,
} from '../../src/observe/metrics.js';

describe('Prometheus registry (text exposition format 0.0.4)', () => {
  it('renders counters, gauges and histograms exactly', () => {
    const r = new Registry();
    const c = r.counter('wsvia_tunnels_total', 'Tunnels opened.');
    const g = r.gauge('wsvia_tunnels_open', 'Tunnels open now.');
    const h = r.histogram('wsvia_connect_seconds', 'Time to open a tunnel.', [0.5, 0.1, 1]);
    c.inc({ status: '2xx' });
    c.inc({ status: '2xx' }, 2);
    c.inc({ status: '4xx' });
    g.inc();
    g.inc();
    g.dec();
    h.observe(0.05, { route: 'a' });
    h.observe(0.7, { route: 'a' });
    h.observe(3, { route: 'a' });
    assert.equal(
      r.render(),
      [
        '# HELP wsvia_tunnels_total Tunnels opened.',
        '# TYPE wsvia_tunnels_total counter',
        'wsvia_tunnels_total{status="2xx"} 3',
        'wsvia_tunnels_total{status="4xx"} 1',
        '# HELP wsvia_tunnels_open Tunnels open now.',
        '# TYPE wsvia_tunnels_open gauge',
        'wsvia_tunnels_open 1',
        '# HELP wsvia_connect_seconds Time to open a tunnel.',
        '# TYPE wsvia_connect_seconds histogram',
        'wsvia_connect_seconds_bucket{le="0.1",route="a"} 1',
        'wsvia_connect_seconds_bucket{le="0.5",route="a"} 1',
        'wsvia_connect_seconds_bucket{le="1",route="a"} 2',
        'wsvia_connect_seconds_bucket{le="+Inf",route="a"} 3',
        'wsvia_connect_seconds_sum{route="a"} 3.75',
        'wsvia_connect_seconds_count{route="a"} 3',
        '',
      ].join('\n'),
    );
    assert.equal(c.get({ status: '2xx' }), 3);
    assert.equal(c.get({ status: '5xx' }), 0);
    assert.equal(g.get(), 1);
  });

  it('renders a metric with no samples as 0 (counters, gauges) or nothing (histograms)', () => {
    const r = new Registry();
    r.counter('a_total', 'A.');
    r.gauge('b', 'B.');
    r.histogram('c_seconds', 'C.', [1]);
    assert.equal(
      r.render(),
      '# HELP a_total A.\n# TYPE a_total counter\na_total 0\n# HELP b B.\n# TYPE b gauge\nb 0\n# HELP c_seconds C.\n# TYPE c_seconds histogram\n',
    );
  });

  it('sorts label names and treats label order as irrelevant', () => {
    const c = new Counter('x_total', 'X.');
    c.inc({ b: '1', a: '2' });
    c.inc({ a: '2', b: '1' });
    assert.deepEqual(c.samples(), ['x_total{a="2",b="1"} 2']);
  });

  it('escapes backslash, double quote and line feed in label values', () => {
    const c = new Counter('x_total', 'X.');
    c.inc({ reason: 'a"b\\c\nd' });
    assert.deepEqual(c.samples(), ['x_total{reason="a\\"b\\\\c\\nd"} 1']);
  });

  it('escapes backslash and line feed in HELP text', () => {
    const c = new Counter('x_total', 'Line one\nline two \\ done');
    assert.equal(c.render().split('\n')[0], '# HELP x_total Line one\\nline two \\\\ done');
    assert.equal(c.render().split('\n').length, 3);
  });

  it('spells infinities and NaN as the format does', () => {
    assert.equal(formatValue(Infinity), '+Inf');
    assert.equal(formatValue(-Infinity), '-Inf');
    assert.equal(formatValue(NaN), 'NaN');
    assert.equal(formatValue(1.5), '1.5');
    assert.equal(formatValue(-0.25), '-0.25');
  });

  it('keeps histogram buckets cumulative, values on a bound counted in it', () => {
    const h = new Histogram('h', 'H.', LATENCY_BUCKETS);
    for (const v of [0.001, 0.001, 0.01, 10, 11]) h.observe(v);
    const lines = h.samples();
    assert.equal(lines[0], 'h_bucket{le="0.001"} 2');
    assert.equal(
      lines.find((l) => l.startsWith('h_bucket{le="0.01"}')),
      'h_bucket{le="0.01"} 3',
    );
    assert.equal(
      lines.find((l) => l.startsWith('h_bucket{le="10"}')),
      'h_bucket{le="10"} 4',
    );
    assert.equal(
      lines.find((l) => l.startsWith('h_bucket{le="+Inf"}')),
      'h_bucket{le="+Inf"} 5',
    );
    assert.equal(lines.at(-1), 'h_count 5');
    let previous = 0;
    for (const l of lines.filter((x) => x.startsWith('h_bucket'))) {
      const n = Number(l.split(' ')[1]);
      assert.ok(n >= previous);
      previous = n;
    }
  });

  it('refuses a name registered twice', () => {
    const r = new Registry();
    r.counter('a', 'A.');
    assert.throws(() => r.gauge('a', 'again'), /registered twice/);
  });

  it('names the content type', () => {
    assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
  });

  it('every rendered line is a comment or a well-formed sample', () => {
    const r = new Registry();
    r.counter('a_total', 'A.').inc({ x: 'q"\n\\' });
    r.gauge('b', 'B.').set({}, Infinity);
    r.histogram('c', 'C.', LATENCY_BUCKETS).observe(0.3, { route: 'r' });
    const text = r.render();
    assert.ok(text.endsWith('\n'));
    for (const line of text.slice(0, -1).split('\n')) {
      assert.match(
        line,
        /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="([^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN))$/,
        line,
      );
    }
  });
});
