/**
 * Results as tables (console and Markdown), each figure with its ratio to wsvia's.
 */

export interface Metric {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly digits: number;
  /** The row this figure's ratios are taken against, when not the section's reference. */
  readonly reference?: string;
}

export interface Row {
  readonly name: string;
  readonly values: Partial<Record<string, number>>;
  /** Every sample behind a median (one per round or memory run), for judging the noise. */
  readonly samples?: Partial<Record<string, readonly number[]>>;
  /** Direct connections are the limit, not a contender. */
  readonly isLimit?: boolean;
}

export interface Section {
  readonly id: 'proxy' | 'gateway' | 'bridge';
  readonly title: string;
  readonly metrics: readonly Metric[];
  readonly rows: Row[];
  /** The row every ratio is taken against. */
  readonly reference: string;
  /** Counts and sizes used, printed with the table. */
  readonly counts: string[];
  readonly notes: string[];
  /** How each peer was configured. */
  readonly configs: Record<string, string>;
}

export function formatValue(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

function ratio(v: number | undefined, ref: number | undefined): string {
  if (v === undefined || ref === undefined || !Number.isFinite(v) || !Number.isFinite(ref) || ref === 0)
    return '';
  return `${(v / ref).toFixed(2)}x`;
}

function cells(section: Section): string[][] {
  const header = ['', ...section.metrics.map((m) => `${m.label} (${m.unit})`)];
  const body = section.rows.map((r) => [
    r.name,
    ...section.metrics.map((m) => {
      const ref = section.rows.find((row) => row.name === (m.reference ?? section.reference));
      const v = r.values[m.key];
      const x = ref ? ratio(v, ref.values[m.key]) : '';
      return x ? `${formatValue(v, m.digits)} (${x})` : formatValue(v, m.digits);
    }),
  ]);
  return [header, ...body];
}

/** A fixed-width table for the console. */
export function textTable(section: Section): string {
  const rows = cells(section);
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const [head, ...body] = rows;
  return [line(head ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function markdownTable(section: Section): string {
  const rows = cells(section);
  const [head, ...body] = rows;
  const md = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [md(head ?? []), md((head ?? []).map((_, i) => (i === 0 ? '---' : '---:'))), ...body.map(md)].join(
    '\n',
  );
}

/** Arrow that says which way is better, for the table legend. */
export function legend(section: Section): string {
  return section.metrics.map((m) => `${m.label}: ${m.better} is better`).join('; ');
}

/** The samples behind each median, one line per contender and figure, for a collapsed block in the report. */
export function sampleLines(section: Section): string[] {
  const out: string[] = [];
  for (const r of section.rows) {
    for (const m of section.metrics) {
      const xs = r.samples?.[m.key];
      if (!xs || xs.length < 2) continue;
      out.push(`${r.name}, ${m.label} (${m.unit}): ${xs.map((x) => formatValue(x, m.digits)).join(', ')}`);
    }
  }
  return out;
}
