/**
 * What the load generator can be asked to do. A job is JSON on the command line of `dist/bench/load.js`; the
 * answer is one JSON line on its stdout. Idle jobs print a `ready` line and then hold their connections until
 * stdin closes, so the orchestrator can read the server's memory while they are open.
 */

/** How a TCP client reaches the target: straight to it, or through an HTTP CONNECT proxy on loopback. */
export type Via =
  | { readonly kind: 'direct'; readonly port: number }
  | { readonly kind: 'connect'; readonly proxyPort: number; readonly targetPort: number };

/** A WebSocket endpoint, optionally reached through a CONNECT proxy. */
export interface WsTarget {
  readonly url: string;
  readonly proxyPort?: number;
  readonly protocols?: readonly string[];
}

export type Job =
  /** One tunnel, `bytes` to the sink in 64 KiB writes with backpressure, until the sink acknowledges them all. */
  | { readonly kind: 'tcp-throughput'; readonly via: Via; readonly bytes: number }
  /** `count` tunnels one after the other: connect (and CONNECT) to the tunnel being open. */
  | { readonly kind: 'tcp-setup'; readonly via: Via; readonly count: number }
  /** `concurrency` clients each opening and closing tunnels in a loop for `seconds`. */
  | { readonly kind: 'tcp-rate'; readonly via: Via; readonly concurrency: number; readonly seconds: number }
  /** Opens `count` tunnels (`concurrency` at a time) and holds them idle. */
  | { readonly kind: 'tcp-idle'; readonly via: Via; readonly count: number; readonly concurrency: number }
  /** `count` WebSockets one after the other, from connect to `open`. */
  | { readonly kind: 'ws-setup'; readonly ws: WsTarget; readonly count: number }
  /**
   * `connections` WebSockets, each keeping `window` messages of `size` bytes in flight to an echo, for
   * `seconds`. Counts bytes echoed back (a TCP echo behind a bridge may re-frame them).
   */
  | {
      readonly kind: 'ws-echo';
      readonly ws: WsTarget;
      readonly connections: number;
      readonly size: number;
      readonly window: number;
      readonly seconds: number;
    }
  /** Opens `count` WebSockets (`concurrency` at a time) and holds them idle. */
  | { readonly kind: 'ws-idle'; readonly ws: WsTarget; readonly count: number; readonly concurrency: number };

export interface ThroughputResult {
  readonly seconds: number;
  readonly bytes: number;
}
export interface LatencyResult {
  readonly latenciesMs: readonly number[];
  readonly errors: number;
}
export interface RateResult {
  readonly completed: number;
  readonly errors: number;
  readonly seconds: number;
}
export interface EchoResult {
  /** Payload bytes echoed back within the window. */
  readonly bytes: number;
  readonly seconds: number;
  readonly errors: number;
}
export interface IdleResult {
  readonly opened: number;
  readonly errors: number;
  readonly firstError?: string;
}
