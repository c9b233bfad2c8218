/** The proxy's Prometheus metrics. Label values come from fixed lists (statuses, reasons), never from clients. */
import { LATENCY_BUCKETS, Registry, type Counter, type Gauge, type Histogram } from '../observe/metrics.js';

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly tunnelsActive: Gauge;
  readonly tunnelsTotal: Counter;
  readonly requestsTotal: Counter;
  readonly responses: Counter;
  readonly bytes: Counter;
  readonly denials: Counter;
  readonly authFailures: Counter;
  readonly setupSeconds: Histogram;
  readonly closes: Counter;

  constructor() {
    const r = this.registry;
    this.tunnelsActive = r.gauge('wsvia_proxy_tunnels_active', 'Tunnels and forwarded exchanges open now');
    this.tunnelsTotal = r.counter('wsvia_proxy_tunnels_total', 'Tunnels opened (CONNECT 200 or Upgrade 101)');
    this.requestsTotal = r.counter('wsvia_proxy_requests_total', 'Requests received, by kind');
    this.responses = r.counter('wsvia_proxy_responses_total', 'Answers to clients, by status code');
    this.bytes = r.counter(
      'wsvia_proxy_bytes_total',
      'Bytes relayed, by direction (up: client to destination)',
    );
    this.denials = r.counter('wsvia_proxy_denials_total', 'Requests refused by policy or limits, by reason');
    this.authFailures = r.counter(
      'wsvia_proxy_auth_failures_total',
      'Failed proxy authentications, by reason',
    );
    this.setupSeconds = r.histogram(
      'wsvia_proxy_tunnel_setup_seconds',
      'From the end of the request head to the tunnel open (DNS, rules, connect)',
      LATENCY_BUCKETS,
    );
    this.closes = r.counter('wsvia_proxy_tunnel_closes_total', 'Tunnels closed, by reason');
  }
}
