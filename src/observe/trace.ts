/**
 * Transcript events of one connection attempt, hop by hop. The library never prints: it hands events to the
 * caller's `trace` callback and publishes them on `node:diagnostics_channel` ("wsvia:trace") when someone listens.
 * `--trace` and the doctor are subscribers like any other.
 */
import diagnostics from 'node:diagnostics_channel';

export type Party = 'client' | 'proxy' | 'server';

/** One step of a connection attempt: the route, DNS, TCP, each HTTP head sent or received, TLS, the open WebSocket, and notes. */
export type TraceEvent =
  | { readonly type: 'route'; readonly text: string; readonly proxy: string | null }
  | { readonly type: 'dns'; readonly host: string; readonly address: string; readonly ms: number }
  | {
      readonly type: 'tcp';
      readonly to: 'proxy' | 'server';
      readonly address: string;
      readonly port: number;
      readonly ms: number;
    }
  | {
      readonly type: 'tls';
      readonly to: 'proxy' | 'server';
      readonly servername: string | undefined;
      readonly protocol: string | null;
      readonly alpn: string | false | null;
      readonly subject: string | undefined;
      readonly issuer: string | undefined;
      readonly authorized: boolean;
      readonly ms: number;
    }
  /** An HTTP head on the wire, already redacted. */
  | {
      readonly type: 'head';
      readonly from: Party;
      readonly to: Party;
      readonly text: string;
      readonly ms: number;
    }
  | { readonly type: 'open'; readonly ms: number }
  | { readonly type: 'note'; readonly text: string; readonly ms: number };

/** An event as delivered: with the attempt it belongs to. */
export type TraceRecord = TraceEvent & { readonly attempt: number };

export type TraceCallback = (event: TraceRecord) => void;

const channel = diagnostics.channel('wsvia:trace');
let attempts = 0;

/** Collects the events of one attempt and times them from its start. */
export class Tracer {
  readonly attempt = ++attempts;
  readonly #start = performance.now();
  readonly #callback: TraceCallback | undefined;

  constructor(callback?: TraceCallback) {
    this.#callback = callback;
  }

  /** Milliseconds since the attempt started, to 0.1 ms. */
  elapsed(): number {
    return Math.round((performance.now() - this.#start) * 10) / 10;
  }

  get active(): boolean {
    return this.#callback !== undefined || channel.hasSubscribers;
  }

  emit(event: TraceEvent): void {
    if (!this.active) return;
    const record = { ...event, attempt: this.attempt } as TraceRecord;
    this.#callback?.(record);
    if (channel.hasSubscribers) channel.publish(record);
  }
}

/** The `node:diagnostics_channel` name trace records are published on when someone subscribes. */
export const TRACE_CHANNEL = 'wsvia:trace';
