import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGoals } from '../../bench/goals.js';
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
    'CPU per GB at most half websockify’s: 0.90 s/GB against 1.00 s/GB: met',
    'setup (p50) faster than websockify’s: 1.20 ms against 8.00 ms: met',
    'memory per idle connection at most 32 KB: 40.00 KiB against 31.25 KiB: not met',
  ]);
});

test('a target whose figures are missing says so', () => {
  const lines = checkGoals(section('gateway', 'wsvia gateway', [{ name: 'nginx', values: { msgs: 1000 } }]));
  assert.equal(lines.length, 3);
  for (const l of lines) assert.match(l, /not measured in this run$/);
});
