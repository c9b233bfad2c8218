import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { likelyCulprits, recommendedPingSeconds } from '../../src/doctor/culprits.js';
import { diffHeaders, isEmptyDiff } from '../../src/doctor/header-diff.js';
import { idleSpans, summarizeProbes } from '../../src/doctor/idle-probe.js';
import { reportToJSON } from '../../src/doctor/report.js';
import { formatReport, progressBar } from '../../src/doctor/format-report.js';
import { secretsOf, scrubReport } from '../../src/doctor/secrets.js';
import { splitDoctorArgs } from '../../src/cli/doctor.js';
import { parseConnectArgs } from '../../src/cli/connect.js';

describe('doctor: idle spans and their summary', () => {
  it('spreads spans at most 1 s or 10% apart, 2 to 10 of them, the last one the probe length', () => {
    assert.deepEqual(idleSpans(5), [1, 2, 3, 4, 5]);
    assert.deepEqual(idleSpans(1), [0.5, 1]);
    const long = idleSpans(600);
    assert.equal(long.length, 10);
    assert.equal(long[long.length - 1], 600);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3600 }), (s) => {
        const spans = idleSpans(s);
        assert.ok(spans.length >= 2 && spans.length <= 10);
        assert.equal(spans[spans.length - 1], s);
        for (let i = 1; i < spans.length; i++) {
          const gap = (spans[i] as number) - (spans[i - 1] as number);
          assert.ok(gap <= Math.max(1, s * 0.1) + 0.11, `gap ${gap} for ${s}`);
        }
      }),
    );
  });

  it('an active cut gives its measured time and how', () => {
    assert.deepEqual(
      summarizeProbes([
        { span: 1, kind: 'survived' },
        { span: 2, kind: 'survived' },
        { span: 3, kind: 'cut', cutAfter: 2.6, how: 'close frame 1001' },
        { span: 4, kind: 'cut', cutAfter: 2.5, how: 'close frame 1001' },
      ]),
      { cutoffSeconds: 2.5, survivedSeconds: 2, how: 'close frame 1001' },
    );
  });

  it('a black hole is bounded by the shortest unanswered span', () => {
    assert.deepEqual(
      summarizeProbes([
        { span: 10, kind: 'survived' },
        { span: 20, kind: 'black-hole' },
        { span: 30, kind: 'black-hole' },
      ]),
      { cutoffSeconds: 20, survivedSeconds: 10, how: 'black hole (a ping after the silence got no pong)' },
    );
  });

  it('nothing cut', () => {
    assert.deepEqual(
      summarizeProbes([
        { span: 1, kind: 'survived' },
        { span: 2, kind: 'not-opened' },
      ]),
      { cutoffSeconds: null, survivedSeconds: 1, how: 'not cut' },
    );
  });
});

describe('doctor: culprits', () => {
  it('names the defaults near a cutoff, and a ping interval of about half', () => {
    assert.match(likelyCulprits(60).join(' '), /nginx.*AWS Application Load Balancer/);
    assert.match(likelyCulprits(100).join(' '), /Cloudflare/);
    assert.match(likelyCulprits(240).join(' '), /Azure/);
    assert.match(likelyCulprits(900).join(' '), /Squid/);
    assert.deepEqual(likelyCulprits(3), []);
    assert.equal(recommendedPingSeconds(60), 30);
    assert.equal(recommendedPingSeconds(1.5), 1);
  });
});

describe('doctor: header diff', () => {
  it('lists removed, added and changed headers, secrets redacted', () => {
    const d = diffHeaders(
      [
        ['Host', 'a:1'],
        ['Upgrade', 'websocket'],
        ['Authorization', 'Bearer abcdef'],
      ],
      [
        ['host', 'b:2'],
        ['Authorization', 'Bearer abcdef'],
        ['X-Forwarded-For', '10.0.0.1'],
        ['Cookie', 'session=123'],
      ],
    );
    assert.deepEqual(d.removed, ['Upgrade']);
    assert.deepEqual(d.added, ['X-Forwarded-For: 10.0.0.1', 'Cookie: ***']);
    assert.deepEqual(d.changed, ['Host: a:1 -> b:2']);
    assert.ok(isEmptyDiff(diffHeaders([['A', 'x']], [['a', 'X']])));
  });
});

describe('doctor: secrets', () => {
  it('takes the proxy password and secret headers out of every string of a report', () => {
    const secrets = secretsOf(
      { proxyAuth: 'bob:hunter2-xyz', headers: { Authorization: 'Bearer tok-abc-123', Accept: 'x' } },
      undefined,
    );
    const r = scrubReport(
      {
        ok: false,
        code: 'PROXY_REFUSED',
        summary: 'saw hunter2-xyz',
        steps: [{ step: 'proxy', ok: false, ms: 1, detail: 'tok-abc-123', more: ['Bearer tok-abc-123'] }],
        idle: undefined,
        advice: ['hunter2-xyz'],
      },
      secrets,
    );
    assert.doesNotMatch(JSON.stringify(r), /hunter2|tok-abc/);
  });
});

describe('doctor: JSON shape', () => {
  it('has exactly ok, code, summary, steps [{ step, ok, ms, detail }], idle, advice', () => {
    const j = reportToJSON({
      ok: true,
      code: null,
      summary: 's',
      steps: [{ step: 'route', ok: true, ms: 0, detail: 'd', warning: true, more: ['x'] }],
      idle: { cutoffSeconds: null, survivedSeconds: 3, how: 'not cut' },
      advice: [],
    });
    assert.deepEqual(Object.keys(j), ['ok', 'code', 'summary', 'steps', 'idle', 'advice']);
    assert.deepEqual(j.steps, [{ step: 'route', ok: true, ms: 0, detail: 'd' }]);
  });
});

describe('doctor: arguments', () => {
  it('takes --idle-probe out and leaves the rest to wsvia connect parser', () => {
    const { rest, idleProbe } = splitDoctorArgs([
      'ws://h/',
      '--idle-probe',
      '30',
      '-x',
      'http://p:1',
      '--json',
    ]);
    assert.equal(idleProbe, 30);
    assert.deepEqual(rest, ['ws://h/', '-x', 'http://p:1', '--json']);
    const parsed = parseConnectArgs(rest);
    assert.equal(parsed.help, false);
    assert.equal(splitDoctorArgs(['--idle-probe=7', 'ws://h/']).idleProbe, 7);
    assert.throws(() => splitDoctorArgs(['--idle-probe', 'x']), /seconds/);
    assert.throws(() => splitDoctorArgs(['--idle-probe']), /seconds/);
    assert.throws(() => splitDoctorArgs(['--idle-probe', '0']), /seconds/);
  });
});

describe('doctor: readable report', () => {
  it('one line per step with its mark, then the verdict and the advice', () => {
    const text = formatReport({
      ok: false,
      code: 'PROXY_REFUSED',
      summary: 'proxy said no',
      steps: [
        { step: 'route', ok: true, ms: 0, detail: 'proxy p from the options' },
        { step: 'tls', ok: true, ms: 12.25, detail: 'TLSv1.3', warning: true, more: ['certificate: x'] },
        { step: 'proxy', ok: false, ms: 3, detail: '403' },
      ],
      idle: undefined,
      advice: ['ask for port 8080'],
    });
    assert.equal(
      text,
      [
        '✓ route        0.0 ms  proxy p from the options',
        '! tls         12.3 ms  TLSv1.3',
        '                      certificate: x',
        '✗ proxy        3.0 ms  403',
        '',
        'verdict: FAILED [PROXY_REFUSED] — proxy said no',
        'advice:',
        '  - ask for port 8080',
        '',
      ].join('\n'),
    );
  });

  it('draws a progress bar that counts probe connections to their real total, with the time spent', () => {
    assert.equal(progressBar(5, 10, 6400, 10), '\ridle probe [#####.....] 5/10 connections, 6 s');
    assert.equal(progressBar(10, 10, 31_600, 4), '\ridle probe [####] 10/10 connections, 32 s');
    assert.equal(progressBar(0, 10, 0, 4), '\ridle probe [....] 0/10 connections, 0 s');
  });
});
