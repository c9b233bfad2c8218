/**
 * A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms with labels.
 * Shared by the proxy, the gateway and the bridge so their `/metrics` look alike. Label sets are bounded by the
 * caller (status classes, route names, reasons), never by client input.
 */

type Labels = Readonly<Record<string, string>>;

function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',')}}`;
}

/** Label sets of one label, rendered once: every tunnel counts a few (`{status="200"}`), so this runs per tunnel. */
const ONE_LABEL = new Map<string, string>();

function labelKey(labels: Labels): string {
  let only: string | undefined;
  for (const k in labels) {
    if (only !== undefined) return renderLabels(labels);
    only = k;
  }
  if (only === undefined) return '';
  const cacheKey = `${only}\u0000${labels[only]}`;
  let key = ONE_LABEL.get(cacheKey);
  if (key === undefined) {
    key = renderLabels(labels);
    // Label values come from fixed lists; the bound only guards against a caller that breaks that rule.
    if (ONE_LABEL.size < 4096) ONE_LABEL.set(cacheKey, key);
  }
  return key;
}

/** A sample value as the exposition format spells it: `+Inf`, `-Inf` and `NaN`, not JavaScript's `Infinity`. */
export function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

/** HELP text escapes backslash and line feed (exposition format 0.0.4), or a newline would end the line early. */
function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  abstract samples(): string[];
  render(): string {
    return [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
      ...this.samples(),
    ].join('\n');
  }
}

/** One number per label set: what counters and gauges both keep, and how both expose it. */
abstract class ScalarMetric extends Metric {
  readonly #values = new Map<string, number>();
  protected put(labels: Labels, value: number): void {
    this.#values.set(labelKey(labels), value);
  }
  protected add(labels: Labels, by: number): void {
    const k = labelKey(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }
  samples(): string[] {
    if (this.#values.size === 0) return [`${this.name} 0`];
    return [...this.#values].map(([k, v]) => `${this.name}${k} ${formatValue(v)}`);
  }
}

export class Counter extends ScalarMetric {
  readonly type = 'counter';
  inc(labels: Labels = {}, by = 1): void {
    this.add(labels, by);
  }
}

export class Gauge extends ScalarMetric {
  readonly type = 'gauge';
  set(labels: Labels, value: number): void {
    this.put(labels, value);
  }
  inc(labels: Labels = {}, by = 1): void {
    this.add(labels, by);
  }
  dec(labels: Labels = {}, by = 1): void {
    this.add(labels, -by);
  }
}

export class Histogram extends Metric {
  readonly type = 'histogram';
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(name: string, help: string, buckets: readonly number[]) {
    super(name, help);
    this.#buckets = [...buckets].sort((a, b) => a - b);
  }
  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.#series.get(k);
    if (!s) this.#series.set(k, (s = { labels, counts: this.#buckets.map(() => 0), sum: 0, count: 0 }));
    const buckets = this.#buckets;
    for (let i = buckets.length - 1; i >= 0 && value <= (buckets[i] as number); i--)
      (s.counts[i] as number)++;
    s.sum += value;
    s.count++;
  }
  samples(): string[] {
    const out: string[] = [];
    for (const s of this.#series.values()) {
      this.#buckets.forEach((b, i) =>
        out.push(`${this.name}_bucket${labelKey({ ...s.labels, le: String(b) })} ${s.counts[i]}`),
      );
      out.push(`${this.name}_bucket${labelKey({ ...s.labels, le: '+Inf' })} ${s.count}`);
      out.push(`${this.name}_sum${labelKey(s.labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelKey(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];
  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.#add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, buckets));
  }
  #add<M extends Metric>(m: M): M {
    if (this.#metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.#metrics.push(m);
    return m;
  }
  /** The exposition text for `GET /metrics`. */
  render(): string {
    return `${this.#metrics.map((m) => m.render()).join('\n')}\n`;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Latency buckets in seconds, 1 ms to 10 s. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;
