/**
 * Whether V8's young generation may grow. The servers hold it at its first size (`--semi-space-growth-factor=1`,
 * cli/heap-tuning.ts): thousands of idle connections then cost a few KiB each, where a burst of setups would
 * otherwise grow it to V8's largest semi-spaces and keep them (bench/NOTES.md: 11-12 KiB per idle tunnel instead of
 * 6 at 5,000 tunnels).
 *
 * Held small, it costs a server that churns through connections (hundreds a second, each open a few ms): the young
 * generation is collected every few dozen setups, each collection copies every setup in flight, and what survives
 * two of them is promoted and collected again as old garbage. Measured on the proxy (50 clients opening tunnels
 * without pause), it cost a quarter of the CPU per tunnel.
 *
 * So once a window (a second): when at least `minClosed` connections closed in it and fewer than `maxOpen` are open,
 * the young generation may grow as V8 grows it by default; otherwise it stays at the size it has. A burst of
 * connections that stay open closes none and never lets it grow. Grown, it stays within V8's largest semi-space
 * size, and V8's heuristics and the collection after a burst (serve/after-burst-gc.ts) shrink it again.
 */
import v8 from 'node:v8';
import { watchConnections } from './connection-watch.js';

export const CHURN_WINDOW_MS = 1_000;
/** Connections closed in one window from which the server is taken to churn. */
export const CHURN_MIN_CLOSED = 100;
/** V8's own growth factor (Node 20-24); 1 holds the young generation at its size. */
const V8_GROWTH_FACTOR = 2;

/** The V8 flag that lets the young generation grow (`grow`) or holds it at its size: set here and at start-up. */
export function youngGenerationGrowthFlag(grow: boolean): string {
  return `--semi-space-growth-factor=${grow ? V8_GROWTH_FACTOR : 1}`;
}

/** The counts of one window, sans I/O: whether connections churned through it. */
export class ChurnWindow {
  #open = 0;
  #closed = 0;

  constructor(
    readonly minClosed: number,
    readonly maxOpen: number,
  ) {}

  opened(): void {
    this.#open++;
  }

  closed(): void {
    if (this.#open > 0) this.#open--;
    this.#closed++;
  }

  /** Ends the window and says whether it churned: many closed, few held. The next window starts empty. */
  next(): boolean {
    const churned = this.#closed >= this.minClosed && this.#open < this.maxOpen;
    this.#closed = 0;
    return churned;
  }
}

export interface GrowthOptions {
  /** Fewer open than this, with enough closing, is churn (the after-burst collection's `minOpened`). */
  readonly maxOpen: number;
  readonly minClosed?: number;
  readonly windowMs?: number;
  /** Lets the young generation grow (true) or holds it (false); V8's growth factor by default. */
  readonly setGrowth?: (grow: boolean) => void;
}

/** One timer per process, no timer per connection; the flag is set only when the answer changes. */
export class YoungGenerationGrowth {
  readonly #window: ChurnWindow;
  readonly #setGrowth: (grow: boolean) => void;
  readonly #timer: NodeJS.Timeout;
  growing = false;

  constructor(o: GrowthOptions) {
    this.#window = new ChurnWindow(o.minClosed ?? CHURN_MIN_CLOSED, o.maxOpen);
    this.#setGrowth = o.setGrowth ?? setV8Growth;
    this.#timer = setInterval(() => this.#endWindow(), o.windowMs ?? CHURN_WINDOW_MS);
    this.#timer.unref();
  }

  opened(): void {
    this.#window.opened();
  }

  closed(): void {
    this.#window.closed();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #endWindow(): void {
    const grow = this.#window.next();
    if (grow === this.growing) return;
    this.growing = grow;
    this.#setGrowth(grow);
  }
}

function setV8Growth(grow: boolean): void {
  v8.setFlagsFromString(youngGenerationGrowthFlag(grow));
}

/** Installs the process's policy (the server commands do, at start-up); replaces one installed before. */
export function growYoungGenerationUnderChurn(o: GrowthOptions): YoungGenerationGrowth {
  return watchConnections('young-generation', new YoungGenerationGrowth(o));
}
