import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { median, percentile } from '../../bench/measure.js';
import { markdownTable, sampleLines, textTable, type Section } from '../../bench/report.js';
import { cpuSeconds, processTree, rssKiB } from '../../bench/procfs.js';

test('a process tree includes a live child, and its CPU and RSS are read from /proc', async () => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    assert.ok(processTree(process.pid).includes(child.pid as number));
    // Burn a little CPU so the tick counter (1/100 s) moves.
    const before = cpuSeconds(process.pid);
    const until = Date.now() + 100;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    assert.ok(cpuSeconds(process.pid) > before, `cpu did not move (${x})`);
    assert.ok(rssKiB(process.pid) > rssKiB(child.pid as number));
  } finally {
    child.kill();
  }
});

test('a pid that does not exist costs nothing', () => {
  assert.equal(cpuSeconds(2 ** 22 + 1), 0);
  assert.equal(rssKiB(2 ** 22 + 1), 0);
});

test('median and nearest-rank percentiles', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile([7], 99), 7);
});

test('tables give each figure with its ratio to the reference row', () => {
  const section: Section = {
    id: 'proxy',
    title: 't',
    reference: 'wsvia proxy',
    metrics: [{ key: 'mbps', label: 'throughput', unit: 'MB/s', better: 'higher', digits: 0 }],
    rows: [
      { name: 'wsvia proxy', values: { mbps: 400 } },
      { name: 'squid', values: { mbps: 600 }, samples: { mbps: [500, 600, 700] } },
      { name: 'other', values: {} },
    ],
    counts: [],
    notes: [],
    configs: {},
  };
  const md = markdownTable(section);
  assert.match(md, /\| squid \| 600 \(1\.50x\) \|/);
  assert.match(md, /\| other \| n\/a \|/);
  assert.match(textTable(section), /wsvia proxy\s+400 \(1\.00x\)/);
  assert.deepEqual(sampleLines(section), ['squid, throughput (MB/s): 500, 600, 700']);
});
