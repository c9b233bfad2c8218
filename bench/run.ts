/**
 * `npm run bench`: wsvia's proxy, gateway and bridge side by side with the servers people use instead, on
 * loopback, measured from outside (/proc) with load generated in separate processes. Not a test: it prints
 * figures and their ratios to wsvia, and writes bench/results.md and bench/results.svg.
 *
 *   node dist/bench/run.js [--quick] [--section proxy|gateway|bridge]...
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { peerVersions, startTargets } from './peers.js';
import { checkGoals, ratioTable } from './goals.js';
import { openFileLimit } from './procfs.js';
import { legend, markdownTable, sampleLines, textTable, type Section } from './report.js';
import { bridgeSection } from './sections/bridge.js';
import { gatewaySection } from './sections/gateway.js';
import { proxySection } from './sections/proxy.js';
import { describe, fitToFdLimit, FULL, QUICK } from './settings.js';
import { chart } from './svg.js';

const SECTIONS = ['proxy', 'gateway', 'bridge'] as const;
type SectionId = (typeof SECTIONS)[number];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function machine(): string[] {
  const cpus = os.cpus();
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpus.length} x ${cpus[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${os.release()}`,
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (the machine is shared: figures are noisy)`,
    `open-file limit: ${openFileLimit()}`,
    `versions: ${Object.entries(peerVersions())
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  ];
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

/** Every run's ratio table goes at the end of bench/NOTES.md (issue 15), with what it ran on. */
async function appendToNotes(
  ratios: string,
  info: readonly string[],
  command: string,
  quick: boolean,
): Promise<void> {
  const head = `### Bench run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${commit()}${quick ? ' (quick: rough)' : ''}`;
  const context = info.filter((l) => /^(load average|machine|versions|total run time)/.test(l));
  const text = ['', head, '', `\`${command}\``, '', ...context.map((l) => `- ${l}`), '', ratios, ''].join(
    '\n',
  );
  const notes = path.join(root, 'bench', 'NOTES.md');
  const title = '## Bench runs (each `npm run bench` appends its ratio table here)';
  const first = fs.readFileSync(notes, 'utf8').includes(title) ? '' : `\n${title}\n`;
  fs.appendFileSync(notes, first + text);
  await formatMarkdown(notes);
  process.stdout.write('appended the ratio table to bench/NOTES.md\n');
}

/** The file as the project's formatter leaves it, so a bench run never fails the lint (prettier is a dev tool). */
async function formatMarkdown(file: string): Promise<void> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, await prettier.format(text, { ...options, filepath: file }));
}

function markdown(sections: readonly Section[], info: string[], command: string, quick: boolean): string {
  const out: string[] = [
    '# wsvia benchmark results',
    '',
    quick ? '**A `--quick` smoke run: counts are small, figures are rough.**\n' : '',
    `Command: \`${command}\``,
    '',
    ...info.map((l) => `- ${l}`),
    '',
    "Each cell: the figure, and in parentheses its ratio to wsvia's (a ratio above 1 means more than wsvia).",
    'Direct rows are the limit (no intermediary), not contenders. Chart: [results.svg](results.svg).',
    'How each figure is measured: [docs/bench.md](../docs/bench.md).',
    '',
  ];
  const ratios = ratioTable(sections);
  if (ratios) out.push("## Issue 15's targets: same-run ratios to squid and HAProxy", '', ratios, '');
  for (const s of sections) {
    out.push(`## ${s.title}`, '', markdownTable(s), '', `_${legend(s)}._`, '');
    out.push(
      'Targets of the issue, on this run:',
      '',
      ...checkGoals(s).map((g) => `- ${g}`),
      '',
      'Counts:',
      '',
    );
    out.push(...s.counts.map((c) => `- ${c}`), '');
    out.push('Configurations:', '', ...Object.entries(s.configs).map(([k, v]) => `- ${k}: \`${v}\``), '');
    if (s.notes.length) out.push('Notes:', '', ...s.notes.map((n) => `- ${n}`), '');
    const raw = sampleLines(s);
    if (raw.length)
      out.push(
        '<details><summary>Every sample behind the medians</summary>',
        '',
        ...raw.map((l) => `- ${l}`),
        '',
        '</details>',
        '',
      );
  }
  return out.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      section: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node dist/bench/run.js [--quick] [--section proxy|gateway|bridge]...\n');
    return 0;
  }
  const wanted = (values.section ?? [...SECTIONS]) as SectionId[];
  for (const w of wanted) {
    if (!SECTIONS.includes(w)) {
      process.stderr.write(`bench: unknown section ${w} (one of ${SECTIONS.join(', ')})\n`);
      return 2;
    }
  }
  const fitted = fitToFdLimit(values.quick ? QUICK : FULL, openFileLimit());
  const settings = fitted.settings;
  const builds = Object.entries(process.env)
    .filter(([k]) => /^WSVIA_BENCH_[A-Z]+_MAIN$/.test(k))
    .map(([k, v]) => `${k}=${v ?? ''}`);
  const command = [
    ...builds,
    'npm run bench',
    ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : []),
  ].join(' ');
  const info = [...machine(), ...(fitted.note ? [fitted.note] : []), ...describe(settings)];
  process.stdout.write(`wsvia bench (${values.quick ? 'quick' : 'full'}): ${wanted.join(', ')}\n`);
  for (const l of info) process.stdout.write(`  ${l}\n`);

  const started = Date.now();
  const targets = await startTargets();
  const sections: Section[] = [];
  try {
    for (const id of wanted) {
      process.stdout.write(`\n== ${id}\n`);
      const t0 = Date.now();
      const s =
        id === 'proxy'
          ? await proxySection(settings, targets)
          : id === 'gateway'
            ? await gatewaySection(settings, targets)
            : await bridgeSection(settings, targets);
      sections.push(s);
      process.stdout.write(`\n${s.title} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n\n${textTable(s)}\n`);
      for (const g of checkGoals(s)) process.stdout.write(`  target: ${g}\n`);
      for (const n of s.notes) process.stdout.write(`  note: ${n}\n`);
    }
  } finally {
    await targets.stop();
  }
  info.push(`total run time: ${((Date.now() - started) / 1000).toFixed(0)} s`);

  // Only a full run of every section replaces the committed results; others go next to the build.
  const complete = !values.quick && wanted.length === SECTIONS.length;
  const dir = complete ? path.join(root, 'bench') : path.join(root, 'dist', 'bench');
  const base = complete ? 'results' : `results-${values.quick ? 'quick-' : ''}${wanted.join('-')}`;
  fs.writeFileSync(path.join(dir, `${base}.md`), markdown(sections, info, command, values.quick === true));
  fs.writeFileSync(
    path.join(dir, `${base}.svg`),
    chart(
      sections,
      `wsvia bench, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${command})`,
    ),
  );
  const ratios = ratioTable(sections);
  if (ratios) {
    process.stdout.write(`\nissue 15, same-run ratios:\n${ratios}\n`);
    await appendToNotes(ratios, info, command, values.quick === true);
  }
  process.stdout.write(`\nwrote ${path.relative(root, path.join(dir, `${base}.md`))} and .svg\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
