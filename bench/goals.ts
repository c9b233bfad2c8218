/**
 * The targets the issues set (issues 3, 6 and 7, "Measured"), checked against a run's figures. A target is met or
 * not on this run; on a shared machine a figure near its bound can land on either side from run to run.
 */
import type { Section } from './report.js';

interface Goal {
  readonly section: Section['id'];
  readonly text: string;
  readonly metric: string;
  readonly unit: string;
  /** The bound: another row's figure times a factor, or a fixed number. */
  readonly bound: { readonly row: string; readonly factor: number } | { readonly value: number };
  readonly atMost: boolean;
}

const GOALS: readonly Goal[] = [
  {
    section: 'proxy',
    text: 'throughput at least squid’s',
    metric: 'mbps',
    unit: 'MB/s',
    bound: { row: 'squid', factor: 1 },
    atMost: false,
  },
  {
    section: 'proxy',
    text: 'CPU per GB at most 0.8x squid’s',
    metric: 'cpuPerGb',
    unit: 's/GB',
    bound: { row: 'squid', factor: 0.8 },
    atMost: true,
  },
  {
    section: 'proxy',
    text: 'memory per idle tunnel at most 8 KB',
    metric: 'kibIdle',
    unit: 'KiB',
    bound: { value: 8000 / 1024 },
    atMost: true,
  },
  {
    section: 'gateway',
    text: 'CPU per GB at most nginx’s',
    metric: 'cpuPerGb',
    unit: 's/GB',
    bound: { row: 'nginx', factor: 1 },
    atMost: true,
  },
  {
    section: 'gateway',
    text: '32-byte messages/s at least 0.9x nginx’s',
    metric: 'msgs',
    unit: 'msgs/s',
    bound: { row: 'nginx', factor: 0.9 },
    atMost: false,
  },
  {
    section: 'gateway',
    text: 'memory per idle WebSocket at most 8 KB',
    metric: 'kibIdle',
    unit: 'KiB',
    bound: { value: 8000 / 1024 },
    atMost: true,
  },
  {
    section: 'bridge',
    text: 'CPU per GB at most half websockify’s',
    metric: 'cpuPerGb',
    unit: 's/GB',
    bound: { row: 'websockify', factor: 0.5 },
    atMost: true,
  },
  {
    section: 'bridge',
    text: 'setup (p50) faster than websockify’s',
    metric: 'p50',
    unit: 'ms',
    bound: { row: 'websockify', factor: 1 },
    atMost: true,
  },
  {
    section: 'bridge',
    text: 'memory per idle connection at most 32 KB',
    metric: 'kibIdle',
    unit: 'KiB',
    bound: { value: 32000 / 1024 },
    atMost: true,
  },
];

const fmt = (v: number): string => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2));

/** One line per target of this section: what wsvia measured, the bound, met or not. */
export function checkGoals(section: Section): string[] {
  const wsvia = section.rows.find((r) => r.name === section.reference);
  return GOALS.filter((g) => g.section === section.id).map((g) => {
    const v = wsvia?.values[g.metric];
    const bound =
      'value' in g.bound
        ? g.bound.value
        : (() => {
            const b = g.bound;
            const other = section.rows.find((r) => r.name === b.row)?.values[g.metric];
            return other === undefined ? undefined : other * b.factor;
          })();
    if (v === undefined || bound === undefined || !Number.isFinite(v) || !Number.isFinite(bound))
      return `${g.text}: not measured in this run`;
    const met = g.atMost ? v <= bound : v >= bound;
    return `${g.text}: ${fmt(v)} ${g.unit} against ${fmt(bound)} ${g.unit}: ${met ? 'met' : 'not met'}`;
  });
}
