/** The gateway's Prometheus metrics. Labels are routes from the config and fixed reasons, never client input. */
import { LATENCY_BUCKETS, Registry } from '../observe/metrics.js';

export const REFUSAL_REASONS = [
  'no_route',
  'origin',
  'max_connections',
  'per_client',
  'rate',
  'header_too_large',
  'handshake_timeout',
  'bad_request',
  'upstream_timeout',
  'upstream_unavailable',
  'upstream_rejected',
  'draining',
  'internal_error',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export function gatewayMetrics() {
  const registry = new Registry();
  return {
    registry,
    wsOpen: registry.gauge('wsvia_gateway_websockets_open', 'WebSockets open now, by route'),
    wsTotal: registry.counter('wsvia_gateway_websockets_total', 'WebSockets opened, by route'),
    refused: registry.counter(
      'wsvia_gateway_upgrades_refused_total',
      'WebSocket upgrades and requests refused, by reason',
    ),
    requests: registry.counter(
      'wsvia_gateway_http_requests_total',
      'Plain HTTP requests proxied, by route and status class',
    ),
    bytes: registry.counter(
      'wsvia_gateway_bytes_total',
      'Bytes relayed, by direction (upstream: client to upstream)',
    ),
    pingsMissed: registry.counter('wsvia_gateway_pings_missed_total', 'Pongs not received in time, by side'),
    deadReaped: registry.counter(
      'wsvia_gateway_dead_peers_reaped_total',
      'Connections closed because a peer stopped answering pings, by side',
    ),
    upstreamHealthy: registry.gauge(
      'wsvia_gateway_upstream_healthy',
      '1 when the upstream is believed alive, 0 when dead',
    ),
    upstreamFailures: registry.counter(
      'wsvia_gateway_upstream_failures_total',
      'Failed connects to an upstream, by upstream and code',
    ),
    warm: registry.gauge(
      'wsvia_gateway_upstream_warm_connections',
      'Upstream connections dialed ahead of need and waiting for an upgrade, by upstream',
    ),
    reloads: registry.counter('wsvia_gateway_reloads_total', 'Configuration reloads, by result'),
    connections: registry.gauge('wsvia_gateway_connections_open', 'Client connections open now'),
    sni: registry.counter(
      'wsvia_gateway_sni_passthrough_total',
      'TLS connections passed through by server name',
    ),
    upgradeSeconds: registry.histogram(
      'wsvia_gateway_upgrade_seconds',
      'Time from the request head to the 101 sent to the client',
      LATENCY_BUCKETS,
    ),
  };
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;
