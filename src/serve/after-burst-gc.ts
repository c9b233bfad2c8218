/**
 * One major garbage collection when a burst of new connections has ended. A connection's setup (its request head,
 * the first sockets of a native relay's handover, promises and timers of the handshake) outlives a few young-space
 * collections while thousands open at once, is promoted, and is garbage once the connection is set up. V8 collects
 * the old generation when it grows past its limit or when its memory reducer runs, and its memory reducer is not
 * started by such a burst: a server that then holds its connections idle keeps that garbage in RSS for as long as
 * it stays quiet (measured, bench/NOTES.md: 7.4-7.9 KiB per idle WebSocket through the gateway, 1.7-3.3 of it
 * kept once collected).
 *
 * The servers tell it of each admitted connection and of its end (serve/admission.ts, through
 * serve/connection-watch.ts); once at least `minOpened` opened and none for
 * `quietMs`, it collects once, if at least `minOpened` are still open. A steady stream of connections never
 * triggers it (V8's own heuristics collect under allocation); one timer per process, no timer per connection.
 *
 * A burst whose connections have closed again is left alone: what it left is not held by anything, and a full
 * collection then costs the next burst its optimized code. The objects the code was specialised for are all gone,
 * so V8 drops that code and compiles it again (measured with `--trace-opt`: about 120 functions recompiled by
 * TurboFan in the 2 s after each collection, 4-33 without; docs/performance.md has the CPU figures).
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { watchConnections } from './connection-watch.js';

export interface AfterBurstOptions {
  /** How long no connection opens before the collection. */
  readonly quietMs: number;
  /** Connections opened since the last collection below which none is worth it. */
  readonly minOpened: number;
  /**
   * No collection when the heap in use is larger than this: the collection stops the event loop for about 2.5 ms per
   * MB live (28 ms at 2,000 idle WebSockets, 40 ms at 9,000, bench/NOTES.md). Default {@link DEFAULT_MAX_HEAP}, or
   * {@link DEFAULT_MAX_HEAP_LAST_RESORT} where the collection is V8's last-resort one ({@link collectionKind}).
   */
  readonly maxHeapBytes?: number;
  /** The collection; V8's full GC by default. */
  readonly collect?: () => void;
  /** The heap in use now, in bytes; V8's own figure by default. */
  readonly heapUsed?: () => number;
}

export const DEFAULT_QUIET_MS = 5_000;
export const DEFAULT_MIN_OPENED = 200;
/** 128 MiB: a pause of about 0.3 s at most (V8 11's full collection: 2.3-2.9 ms per MB live). */
export const DEFAULT_MAX_HEAP = 128 * 1024 * 1024;
/** 64 MiB where the collection is V8's last-resort one (about 6 ms per MB live): about 0.4 s at most. */
export const DEFAULT_MAX_HEAP_LAST_RESORT = 64 * 1024 * 1024;

export class AfterBurstCollector {
  readonly #quietMs: number;
  readonly #minOpened: number;
  readonly #maxHeapBytes: number;
  readonly #collect: () => void;
  readonly #heapUsed: () => number;
  #opened = 0;
  #open = 0;
  #lastOpened = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Collections run so far. */
  collections = 0;
  /** Bursts that ended with the heap over `maxHeapBytes`, left to V8. */
  skipped = 0;
  /** Bursts that ended with fewer than `minOpened` connections still open, left to V8. */
  closedAgain = 0;

  constructor(o: AfterBurstOptions) {
    this.#quietMs = o.quietMs;
    this.#minOpened = o.minOpened;
    this.#maxHeapBytes =
      o.maxHeapBytes ?? (LAST_RESORT_HERE ? DEFAULT_MAX_HEAP_LAST_RESORT : DEFAULT_MAX_HEAP);
    this.#collect = o.collect ?? fullGc();
    this.#heapUsed = o.heapUsed ?? (() => v8.getHeapStatistics().used_heap_size);
  }

  opened(): void {
    this.#opened++;
    this.#open++;
    this.#lastOpened = performance.now();
    if (this.#timer === undefined && this.#opened >= this.#minOpened) this.#arm(this.#quietMs);
  }

  closed(): void {
    if (this.#open > 0) this.#open--;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    // Whole milliseconds: one Timeout with a fractional delay changes the shape of every Timeout in the process, and
    // V8 then deoptimizes Node's timer code and every function holding a timer (bench/NOTES.md, seventh pass).
    this.#timer = setTimeout(() => this.#check(), Math.ceil(ms));
    this.#timer.unref();
  }

  #check(): void {
    this.#timer = undefined;
    const quiet = performance.now() - this.#lastOpened;
    if (quiet < this.#quietMs) {
      this.#arm(this.#quietMs - quiet);
      return;
    }
    this.#opened = 0;
    if (this.#open < this.#minOpened) {
      this.closedAgain++;
      return;
    }
    if (this.#heapUsed() > this.#maxHeapBytes) {
      this.skipped++;
      return;
    }
    this.collections++;
    this.#collect();
  }
}

/** V8's options for its last-resort collection (`gc(options)` of `--expose-gc`). */
const LAST_RESORT = { type: 'major', execution: 'sync', flavor: 'last-resort' } as const;

/** Which collection gives a burst's pages back on this V8: its last-resort one from V8 12, a full one before. */
export function collectionKind(v8Version: string): 'last-resort' | 'full' {
  const major = Number(v8Version.split('.')[0]);
  return Number.isInteger(major) && major >= 12 ? 'last-resort' : 'full';
}

/** Whether this process's V8 runs the last-resort collection (its bound and its call). */
const LAST_RESORT_HERE = collectionKind(process.versions.v8) === 'last-resort';

/**
 * V8's full collection, compacting every page: a plain full GC frees the garbage but compacts only the most
 * fragmented pages, and the burst's garbage lies between the connections' live objects on every page (measured:
 * 3.1 KiB of old space per idle WebSocket stayed committed, 0.9 of it used). The compaction flag is read during
 * the collection, so it is on for this one only.
 *
 * On V8 12 and later (Node 22, 24) that collection alone left RSS higher than before it (the gateway held 15 s:
 * 10-13 KiB per idle WebSocket against 7.7 with no collection; bench/NOTES.md, seventh pass): the pages it empties
 * stay in V8's page pool. There the collection is V8's last-resort one, which gives them back (two full
 * collections; 1-4 KiB held). V8 11 (Node 20) does not know that kind and runs a young-generation collection for it.
 *
 * `gc` is reached without `node --expose-gc`: that flag is read when a context is made, so it is on for one new
 * context only (no other context, a PAC sandbox say, gets a `gc` to call).
 */
function fullGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  let gc: (options?: typeof LAST_RESORT) => void;
  try {
    gc = vm.runInNewContext('gc') as typeof gc;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  return () => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      if (LAST_RESORT_HERE) gc(LAST_RESORT);
      else gc();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/** Installs the process's collector (the server commands do, at start-up); replaces one installed before. */
export function collectAfterBursts(o: AfterBurstOptions): AfterBurstCollector {
  return watchConnections('after-burst-gc', new AfterBurstCollector(o));
}
