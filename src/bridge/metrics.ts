/** The bridge's Prometheus metrics (names `wsvia_bridge_*`), on the shared registry type. */
import { LATENCY_BUCKETS, Registry } from '../observe/metrics.js';

export function bridgeMetrics() {
  const registry = new Registry();
  return {
    registry,
    sessions: registry.counter(
      'wsvia_bridge_sessions_total',
      'WebSocket sessions bridged to a TCP target, by kind',
    ),
    refused: registry.counter(
      'wsvia_bridge_refused_total',
      'Upgrades refused before any TCP connection, by reason',
    ),
    active: registry.gauge('wsvia_bridge_active_sessions', 'Sessions open now'),
    bytes: registry.counter('wsvia_bridge_bytes_total', 'Bytes carried, by direction (up: client to target)'),
    closed: registry.counter('wsvia_bridge_closed_total', 'Sessions ended, by who closed first'),
    setup: registry.histogram(
      'wsvia_bridge_setup_seconds',
      'From the upgrade request to the target connected and the WebSocket open',
      LATENCY_BUCKETS,
    ),
    reversePorts: registry.gauge('wsvia_bridge_reverse_ports', 'Ports listened on for reverse tunnels'),
  };
}
export type BridgeMetrics = ReturnType<typeof bridgeMetrics>;
