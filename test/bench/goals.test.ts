import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGoals, goalResults, ratioTable } from '../../bench/goals.js';
import type { Section } from '../../bench/report.js';

function section(id: Section['id'], reference: string, rows: Section['rows']): Section {
  return { id, title: id, reference, metrics: [], rows, counts: [], notes: [], configs: {} };
}

test('targets against another peer and fixed bounds are met or not', () => {
  const lines = checkGoals(
    section('bridge', 'wsvia bridge', [
      { name: 'wsvia bridge', values: { cpuPerGb: 0.9, p50: 1.2, kibIdle: 40 } },
      { name: 'websockify', values: { cpuPerGb: 2, p50: 8 } },
    ]),
  );
  assert.deepEqual(lines, [
    'issue 7, bridge CPU per GB: 0.90 s/GB (websockify 2.00 s/GB, ratio 0.45x; target <= 0.5x): met',
    'issue 7, bridge setup p50: 1.20 ms (websockify 8.00 ms, ratio 0.15x; target <= 1x): met',
    'issue 7, bridge memory per idle connection: 40.00 KiB (a fixed bound; target <= 31.25 KiB): not met',
  ]);
});

test('a target whose figures are missing says so', () => {
  const lines = checkGoals(section('gateway', 'wsvia gateway', [{ name: 'nginx', values: { msgs: 1000 } }]));
  assert.equal(lines.length, 7);
  for (const l of lines) assert.match(l, /not measured$/);
});

test("issue 15's gateway targets are ratios to HAProxy's figures of the same run (memory: the held reading)", () => {
  const gw = section('gateway', 'wsvia gateway', [
    { name: 'wsvia gateway', values: { cpuPerGb: 0.4, p50: 0.7, kibIdle: 9, kibSettled: 6, msgs: 90_000 } },
    { name: 'HAProxy', values: { cpuPerGb: 0.5, p50: 0.5, kibIdle: 5, kibSettled: 5, msgs: 100_000 } },
    { name: 'nginx', values: { cpuPerGb: 1, msgs: 100_000 } },
  ]);
  const byWhat = new Map(
    goalResults(gw)
      .filter((r) => r.issue === 15)
      .map((r) => [r.what, r]),
  );
  assert.deepEqual(
    [...byWhat.values()].map((r) => [r.what, r.ratio?.toFixed(2), r.target, r.met]),
    [
      ['gateway CPU per GB', '0.80', '<= 1x', true],
      ['gateway setup p50 (connect + upgrade)', '1.40', '<= 1.2x', false],
      ['gateway memory per idle WebSocket, held 15 s', '1.20', '<= 1.1x', false],
      ['gateway 32 B messages per second', '0.90', '>= 1x', false],
    ],
  );
});

test('the ratio table has one row per issue 15 target of the sections run, with the peer and the verdict', () => {
  const proxy = section('proxy', 'wsvia proxy', [
    { name: 'wsvia proxy', values: { cpuPerGb: 0.3, mbps: 1100, rate: 2000 } },
    { name: 'squid', values: { cpuPerGb: 0.5, mbps: 1000, rate: 2500 } },
  ]);
  const rows = ratioTable([proxy]).split('\n');
  assert.equal(rows.length, 2 + 3);
  assert.equal(rows[2], '| proxy CPU per GB relayed | 0.30 s/GB | squid 0.50 s/GB | 0.60x | <= 0.8x | met |');
  assert.equal(
    rows[3],
    '| proxy throughput, one tunnel | 1,100 MB/s | squid 1,000 MB/s | 1.10x | >= 1x | met |',
  );
  assert.equal(
    rows[4],
    '| proxy new tunnels per second | 2,000 /s | squid 2,500 /s | 0.80x | >= 1x | not met |',
  );
  assert.equal(ratioTable([section('bridge', 'wsvia bridge', [])]), '');
});
