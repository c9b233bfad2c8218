/**
 * The network fuzzers' runner: fast-check draws batches of (bytes, delivery plan), each batch is sent over many
 * connections at once, and every connection is judged (no hang, no answer the listener must never give). Around
 * a run, the process is watched: no uncaught exception or unhandled rejection, no socket left open, bounded heap.
 *
 * `FUZZ_SEED=n` replays a run (fast-check prints the seed of a failure); `FUZZ_RUNS=n` sets the batches per
 * property (the soak uses a bigger count).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import v8 from 'node:v8';
import vm from 'node:vm';
import { until } from '../helpers/eventually.js';
import { deliver, mapBounded, plan, type Endpoint, type Outcome } from './delivery.js';

/** fast-check's parameters for a property of `runs` batches (FUZZ_RUNS overrides, FUZZ_SEED replays). */
export function fuzzParameters(runs: number): fc.Parameters<unknown> {
  const seed = process.env['FUZZ_SEED'];
  const override = Number(process.env['FUZZ_RUNS']);
  return {
    numRuns: Number.isInteger(override) && override > 0 ? override : runs,
    ...(seed === undefined || seed === '' ? {} : { seed: Number(seed) }),
    // A failing batch is shrunk to its smallest, but a network shrink must not outlive the test.
    interruptAfterTimeLimit: 30_000,
    includeErrorInReport: true,
    markInterruptAsFailure: false,
  };
}

/** What a listener must never answer to `input`: a message, or undefined when the outcome is acceptable. */
export type Judge = (input: Buffer, o: Outcome) => string | undefined;

export interface FuzzRun {
  readonly endpoint: Endpoint;
  readonly input: fc.Arbitrary<Buffer>;
  /** Batches (property runs); each is up to `batch` connections. */
  readonly runs: number;
  readonly batch?: number;
  /** Connections open at once. */
  readonly concurrency?: number;
  /** How long the server may take to end a connection after our half-close. */
  readonly deadlineMs?: number;
  readonly judge?: Judge;
}

/** The status of the first HTTP response in `received`, if there is one. */
export function statusOf(received: Buffer): number | undefined {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(received.subarray(0, 16).toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

/** A 500 is a fault of the server, never the client's: no fuzzed input may earn one. */
export const no500: Judge = (_input, o) =>
  statusOf(o.received) === 500
    ? `answered 500: ${o.received.subarray(0, 300).toString('latin1')}`
    : undefined;

/** A server's own faults are 500; 502/504 are for a peer behind it that failed, never for a client's bytes. */
export const serverJudge: Judge = (input, o) => {
  const bad = no500(input, o);
  if (bad !== undefined) return bad;
  const s = statusOf(o.received);
  return s !== undefined && s >= 500 && s !== 502 && s !== 504 ? `answered ${s}` : undefined;
};

function describe(input: Buffer): string {
  const s = JSON.stringify(input.subarray(0, 400).toString('latin1'));
  return input.length > 400 ? `${s}... (${input.length} bytes)` : s;
}

/** The bytes of one case, printed short in a counterexample (a Buffer prints as every byte in decimal). */
class Sent {
  constructor(readonly bytes: Buffer) {}
  [fc.toStringMethod](): string {
    return describe(this.bytes);
  }
}

/** Runs the property; resolves with the number of connections made. */
export async function fuzz(r: FuzzRun): Promise<number> {
  let connections = 0;
  const batch = r.batch ?? 40;
  const deadline = r.deadlineMs ?? 5000;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.tuple(
          r.input.map((b) => new Sent(b)),
          plan,
        ),
        { minLength: 1, maxLength: batch, size: 'max' },
      ),
      async (cases) => {
        const outcomes = await mapBounded(cases, r.concurrency ?? 24, ([sent, p]) => {
          connections++;
          return deliver(r.endpoint, sent.bytes, p, deadline);
        });
        cases.forEach(([{ bytes }], i) => {
          const o = outcomes[i] as Outcome;
          const got = JSON.stringify(o.received.subarray(0, 200).toString('latin1'));
          assert.ok(
            !o.hung,
            `hung: no connect or handshake, or no end, within ${deadline} ms; sent ${describe(bytes)}, got ${got}`,
          );
          const wrong = r.judge?.(bytes, o);
          assert.equal(wrong, undefined, `${wrong ?? ''}; sent ${describe(bytes)}`);
        });
      },
    ),
    fuzzParameters(r.runs),
  );
  return connections;
}

/** Errors that reached the process (a crash in production), collected for the test to fail on. */
export class ProcessWatch {
  readonly errors: string[] = [];
  readonly #onError = (e: unknown): void => {
    this.errors.push(e instanceof Error ? (e.stack ?? e.message) : String(e));
  };

  constructor() {
    process.on('uncaughtException', this.#onError);
    process.on('unhandledRejection', this.#onError);
  }

  stop(): void {
    process.removeListener('uncaughtException', this.#onError);
    process.removeListener('unhandledRejection', this.#onError);
  }
}

/** TCP sockets this process holds open (client and server ends alike; listeners not counted). */
export function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

let gc: (() => void) | undefined;
/** The heap in use after a full collection (Node's `gc`, exposed here for the measurement only). */
export function heapAfterGc(): number {
  if (gc === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** The process-level checks around a fuzz run: nothing thrown, every socket closed, heap bounded. */
export class RunChecks {
  readonly #watch = new ProcessWatch();
  readonly #sockets = openSockets();
  readonly #heap = heapAfterGc();

  /**
   * Waits until the sockets are back to the count before the run (servers release every connection once the
   * clients are gone), then asserts no error reached the process and the heap grew by less than `maxHeapGrowth`.
   */
  async verify(
    extra: { open: () => number; name: string }[],
    { maxHeapGrowth = 48 * 1024 * 1024, settleMs = 20_000 } = {},
  ): Promise<void> {
    try {
      for (const c of extra)
        await until(`${c.name} back to 0 (now ${c.open()})`, () => c.open() === 0, settleMs);
      await until(
        `open sockets back to ${this.#sockets} (now ${openSockets()})`,
        () => openSockets() <= this.#sockets,
        settleMs,
      );
      assert.deepEqual(
        this.#watch.errors,
        [],
        'an uncaught exception or unhandled rejection reached the process',
      );
      const growth = heapAfterGc() - this.#heap;
      assert.ok(growth < maxHeapGrowth, `heap grew by ${(growth / 1048576).toFixed(1)} MiB over the run`);
    } finally {
      this.#watch.stop();
    }
  }
}
