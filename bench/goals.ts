/**
 * The targets the issues set, checked against a run's figures: issues 3, 6 and 7 (the first targets) and issue 15
 * (ahead of squid and HAProxy, as same-run ratios). A target is met or not on this run; on a shared machine a
 * figure near its bound can land on either side from run to run.
 */
import { formatValue, type Section } from './report.js';

interface Goal {
  readonly issue: number;
  readonly section: Section['id'];
  /** What is compared, as the ratio table names it. */
  readonly what: string;
  readonly metric: string;
  readonly unit: string;
  /** The bound: another row's figure times a factor, or a fixed number. */
  readonly bound: { readonly row: string; readonly factor: number } | { readonly value: number };
  readonly atMost: boolean;
}

const ratioGoal = (
  issue: number,
  section: Section['id'],
  what: string,
  metric: string,
  unit: string,
  row: string,
  factor: number,
  atMost: boolean,
): Goal => ({ issue, section, what, metric, unit, bound: { row, factor }, atMost });

const GOALS: readonly Goal[] = [
  ratioGoal(15, 'proxy', 'proxy CPU per GB relayed', 'cpuPerGb', 's/GB', 'squid', 0.8, true),
  ratioGoal(15, 'proxy', 'proxy throughput, one tunnel', 'mbps', 'MB/s', 'squid', 1, false),
  ratioGoal(15, 'proxy', 'proxy new tunnels per second', 'rate', '/s', 'squid', 1, false),
  {
    issue: 3,
    section: 'proxy',
    what: 'proxy memory per idle tunnel',
    metric: 'kibIdle',
    unit: 'KiB',
    bound: { value: 8000 / 1024 },
    atMost: true,
  },
  ratioGoal(15, 'gateway', 'gateway CPU per GB', 'cpuPerGb', 's/GB', 'HAProxy', 1, true),
  ratioGoal(15, 'gateway', 'gateway setup p50 (connect + upgrade)', 'p50', 'ms', 'HAProxy', 1.2, true),
  // What an idle WebSocket keeps: the reading after the WebSockets were held quiet for a while (bench/memory.ts),
  // not the one 1 s after a burst, which still holds the burst's garbage (issue 6's bound below reads that one).
  ratioGoal(
    15,
    'gateway',
    'gateway memory per idle WebSocket, held 15 s',
    'kibSettled',
    'KiB',
    'HAProxy',
    1.1,
    true,
  ),
  ratioGoal(15, 'gateway', 'gateway 32 B messages per second', 'msgs', 'msgs/s', 'HAProxy', 1, false),
  ratioGoal(6, 'gateway', 'gateway CPU per GB', 'cpuPerGb', 's/GB', 'nginx', 1, true),
  ratioGoal(6, 'gateway', 'gateway 32 B messages per second', 'msgs', 'msgs/s', 'nginx', 0.9, false),
  {
    issue: 6,
    section: 'gateway',
    what: 'gateway memory per idle WebSocket',
    metric: 'kibIdle',
    unit: 'KiB',
    bound: { value: 8000 / 1024 },
    atMost: true,
  },
  ratioGoal(7, 'bridge', 'bridge CPU per GB', 'cpuPerGb', 's/GB', 'websockify', 0.5, true),
  ratioGoal(7, 'bridge', 'bridge setup p50', 'p50', 'ms', 'websockify', 1, true),
  {
    issue: 7,
    section: 'bridge',
    what: 'bridge memory per idle connection',
    metric: 'kibIdle',
    unit: 'KiB',
    bound: { value: 32000 / 1024 },
    atMost: true,
  },
];

/** One target on one run. `peer` and `ratio` only for targets set against another server's figure. */
export interface GoalResult {
  readonly issue: number;
  readonly what: string;
  readonly unit: string;
  readonly wsvia: number | undefined;
  readonly peer?: { readonly name: string; readonly value: number | undefined };
  readonly ratio?: number | undefined;
  /** `<= 0.8x`, `>= 1x`, `<= 7.81 KiB`. */
  readonly target: string;
  /** Undefined when a figure is missing from this run. */
  readonly met: boolean | undefined;
}

const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);

function evaluate(section: Section, g: Goal): GoalResult {
  const v = section.rows.find((r) => r.name === section.reference)?.values[g.metric];
  const sign = g.atMost ? '<=' : '>=';
  const base = { issue: g.issue, what: g.what, unit: g.unit, wsvia: v };
  if ('value' in g.bound) {
    const bound = g.bound.value;
    const target = `${sign} ${formatValue(bound, 2)} ${g.unit}`;
    return { ...base, target, met: finite(v) ? (g.atMost ? v <= bound : v >= bound) : undefined };
  }
  const { row, factor } = g.bound;
  const other = section.rows.find((r) => r.name === row)?.values[g.metric];
  const ratio = finite(v) && finite(other) && other !== 0 ? v / other : undefined;
  const met = ratio === undefined ? undefined : g.atMost ? ratio <= factor : ratio >= factor;
  return { ...base, peer: { name: row, value: other }, ratio, target: `${sign} ${factor}x`, met };
}

/** Every target of this section, evaluated on this run. */
export function goalResults(section: Section): GoalResult[] {
  return GOALS.filter((g) => g.section === section.id).map((g) => evaluate(section, g));
}

const fmt = (v: number | undefined): string => formatValue(v, 2);
const verdict = (met: boolean | undefined): string =>
  met === undefined ? 'not measured' : met ? 'met' : 'not met';

/** One line per target of this section: what wsvia measured, the bound, met or not. */
export function checkGoals(section: Section): string[] {
  return goalResults(section).map((r) => {
    const against = r.peer
      ? `${r.peer.name} ${fmt(r.peer.value)} ${r.unit}, ratio ${r.ratio === undefined ? 'n/a' : `${r.ratio.toFixed(2)}x`}`
      : 'a fixed bound';
    return `issue ${r.issue}, ${r.what}: ${fmt(r.wsvia)} ${r.unit} (${against}; target ${r.target}): ${verdict(r.met)}`;
  });
}

/**
 * The same-run ratio table of issue 15 (wsvia, the peer, the ratio, the target, met or not) for the sections of a
 * run, in Markdown: what `npm run bench` prints last and appends to bench/NOTES.md.
 */
export function ratioTable(sections: readonly Section[], issue = 15): string {
  const rows = sections.flatMap((s) => goalResults(s)).filter((r) => r.issue === issue && r.peer);
  if (!rows.length) return '';
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [
    line(['', 'wsvia', 'peer', 'ratio', 'target', '']),
    line(['---', '---:', '---:', '---:', '---', '---']),
    ...rows.map((r) =>
      line([
        r.what,
        `${fmt(r.wsvia)} ${r.unit}`,
        `${r.peer?.name ?? ''} ${fmt(r.peer?.value)} ${r.unit}`,
        r.ratio === undefined ? 'n/a' : `${r.ratio.toFixed(2)}x`,
        r.target,
        verdict(r.met),
      ]),
    ),
  ].join('\n');
}
