/**
 * What a connection handler needs from the running gateway: the configuration snapshot in force when the
 * connection's request arrived (a reload swaps the snapshot, never edits it), metrics, the access log, limits
 * accounting and the set of open WebSockets for drain.
 */
import type { SecureContext } from 'node:tls';
import type { ErrorCode } from '../errors.js';
import type { AccessLog } from '../observe/access-log.js';
import type { AdmissionRefusal, AdmissionSlot } from '../serve/admission.js';
import type { GatewayConfig, UpstreamSpec } from './config.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { RouteTable } from './route-table.js';
import type { UpstreamPool } from './upstream-pool.js';
import type { WarmSource } from './upstream-connect.js';
import type { OpenWebSocket } from './ws-relay.js';

export interface Snapshot {
  readonly config: GatewayConfig;
  readonly table: RouteTable;
  /** By route name (`HOST/PATH` or `PATH`). */
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  /** The upstream CA file's contents, read at load. */
  readonly ca: string | undefined;
  /** The TLS listener's certificate, read at load (SIGHUP reloads it). */
  readonly secureContext: SecureContext | undefined;
}

export interface Runtime {
  snapshot(): Snapshot;
  readonly metrics: GatewayMetrics;
  readonly log: AccessLog;
  readonly draining: boolean;
  /**
   * Counts a new client connection from `address` (the slot's close() gives it back, once), or says which limit
   * refuses it.
   */
  admit(address: string): AdmissionSlot | AdmissionRefusal;
  markDead(u: UpstreamSpec, code: ErrorCode): void;
  /** Upstream connections dialed ahead of need, for WebSocket upgrades. */
  readonly warm?: WarmSource | undefined;
  /** Registers an open WebSocket (for the drain and the open count). */
  track(relay: OpenWebSocket): void;
  /** Forgets a WebSocket once it has ended. */
  untrack(relay: OpenWebSocket): void;
}
