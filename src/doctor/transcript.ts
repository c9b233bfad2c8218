/**
 * The trace of one connection attempt as the doctor keeps it: each event with the time it arrived, so that a step
 * that failed can be timed from the end of the one before it. Heads on the wire are re-read with the protocol's own
 * head readers (the trace carries them as text), never with a second parser.
 */
import {
  RequestHeadReader,
  ResponseHeadReader,
  type RequestHead,
  type ResponseHead,
} from '../protocol/head.js';
import type { TraceCallback, TraceRecord } from '../observe/trace.js';

export interface TimedRecord {
  readonly event: TraceRecord;
  /** Milliseconds since the doctor started the attempt. */
  readonly at: number;
}

export class Transcript {
  readonly #start = performance.now();
  readonly #records: TimedRecord[] = [];
  /** Events beyond this are dropped: one attempt has a handful (auth rounds are capped at 4). */
  static readonly MAX_RECORDS = 200;

  /** Milliseconds since the start, to 0.1 ms. */
  now(): number {
    return Math.round((performance.now() - this.#start) * 10) / 10;
  }

  /** A trace callback that records, then passes each event on to `next` (the user's `--trace`). */
  callback(next?: TraceCallback): TraceCallback {
    return (event) => {
      if (this.#records.length < Transcript.MAX_RECORDS) this.#records.push({ event, at: this.now() });
      next?.(event);
    };
  }

  get records(): readonly TimedRecord[] {
    return this.#records;
  }

  /** The time the last recorded event arrived (0 when none). */
  lastAt(): number {
    return this.#records[this.#records.length - 1]?.at ?? 0;
  }

  find<T extends TraceRecord['type']>(
    type: T,
    pred: (e: Extract<TraceRecord, { type: T }>) => boolean = () => true,
  ): (TimedRecord & { event: Extract<TraceRecord, { type: T }> }) | undefined {
    return this.filter(type, pred)[0];
  }

  filter<T extends TraceRecord['type']>(
    type: T,
    pred: (e: Extract<TraceRecord, { type: T }>) => boolean = () => true,
  ): (TimedRecord & { event: Extract<TraceRecord, { type: T }> })[] {
    return this.#records.filter(
      (r): r is TimedRecord & { event: Extract<TraceRecord, { type: T }> } =>
        r.event.type === type && pred(r.event as Extract<TraceRecord, { type: T }>),
    );
  }
}

/** A response head from its trace text (already redacted), or undefined if it does not parse. */
export function responseFromText(text: string): ResponseHead | undefined {
  try {
    return new ResponseHeadReader({ peer: 'trace', hop: 'proxy' }).receive(
      Buffer.from(`${text}\r\n\r\n`, 'latin1'),
    )?.head;
  } catch {
    return undefined;
  }
}

/** A request head from its trace text (already redacted), or undefined if it does not parse. */
export function requestFromText(text: string): RequestHead | undefined {
  try {
    return new RequestHeadReader({ peer: 'trace', hop: 'upgrade' }).receive(
      Buffer.from(`${text}\r\n\r\n`, 'latin1'),
    )?.head;
  } catch {
    return undefined;
  }
}
