/**
 * One `/metrics` for a server of `--workers N`: the exposition texts of every worker merged into one, whichever
 * process answers the scrape. Counters and histograms are summed over the workers (a sum means the same thing as
 * in one process); gauges keep one series per worker, labelled `worker="I"`, because a gauge's sum is not always
 * meaningful (an upstream's health flag seen by each worker). `sum without (worker) (...)` gives totals.
 */
import { formatValue } from './metrics.js';

export interface WorkerExposition {
  /** The worker's index, 0 to N-1. */
  readonly worker: number;
  /** Its exposition text (format 0.0.4), as its own registry renders it. */
  readonly text: string;
}

interface Family {
  readonly help: string;
  readonly type: string;
  readonly samples: Map<string, number>;
}

const TYPE_LINE = /^# TYPE (\S+) (\S+)$/;
const HELP_LINE = /^# HELP (\S+) ?(.*)$/;

/** `name{a="b"}` with `worker="I"` added as the first label. */
function withWorker(series: string, worker: number): string {
  const brace = series.indexOf('{');
  if (brace === -1) return `${series}{worker="${worker}"}`;
  const rest = series.slice(brace + 1);
  return `${series.slice(0, brace)}{worker="${worker}"${rest === '}' ? '' : ','}${rest}`;
}

class Merger {
  readonly #families = new Map<string, Family>();
  readonly #help = new Map<string, string>();

  add(part: WorkerExposition): void {
    let family: Family | undefined;
    for (const line of part.text.split('\n')) {
      if (line === '') continue;
      const help = HELP_LINE.exec(line);
      if (help) {
        this.#help.set(help[1] ?? '', help[2] ?? '');
        continue;
      }
      const type = TYPE_LINE.exec(line);
      if (type) {
        family = this.#family(type[1] ?? '', type[2] ?? 'untyped');
        continue;
      }
      if (line.startsWith('#') || !family) continue;
      this.#sample(family, line, part.worker);
    }
  }

  #family(name: string, type: string): Family {
    let f = this.#families.get(name);
    if (!f) this.#families.set(name, (f = { help: this.#help.get(name) ?? '', type, samples: new Map() }));
    return f;
  }

  #sample(family: Family, line: string, worker: number): void {
    const space = line.lastIndexOf(' ');
    if (space === -1) return;
    const value = Number(
      line
        .slice(space + 1)
        .replace('+Inf', 'Infinity')
        .replace('-Inf', '-Infinity'),
    );
    const series = line.slice(0, space);
    const key = family.type === 'gauge' ? withWorker(series, worker) : series;
    family.samples.set(key, (family.samples.get(key) ?? 0) + value);
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const [series, value] of f.samples) out.push(`${series} ${formatValue(value)}`);
    }
    return `${out.join('\n')}\n`;
  }
}

/** Merges the workers' expositions into one text, families in the order they first appear. */
export function mergeExpositions(parts: readonly WorkerExposition[]): string {
  const merger = new Merger();
  for (const p of parts) merger.add(p);
  return merger.render();
}
