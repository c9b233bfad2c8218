/**
 * The proxy's view of the shared relay (serve/relay.ts): what its access log needs about each tunnel. The relay
 * itself (backpressure, half-close, resets, the idle and lifetime sweep) lives in serve/, shared by every server.
 */
import type { Tunnel as RelayTunnel } from '../serve/relay.js';

export { CLOSE_REASONS, reusedReads, TunnelSet, type CloseReason } from '../serve/relay.js';

/** What the access log says about a tunnel, filled in by the server. */
export interface TunnelInfo {
  readonly client: string;
  readonly user: string | undefined;
  readonly method: string;
  readonly target: string;
  readonly status: number;
  /** When the request head was complete (ms since the epoch). */
  readonly requestedAt: number;
  readonly clientKey: string;
}

/** One open proxy tunnel (or forwarded exchange). */
export type Tunnel = RelayTunnel<TunnelInfo>;
