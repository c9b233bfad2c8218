/**
 * Renders trace events as the `--trace` transcript: each HTTP head under a `from > to` line with the time since
 * the attempt began, other steps as `*` lines.
 */
import type { TraceRecord } from './trace.js';

function ms(n: number): string {
  return `${n.toFixed(1)} ms`;
}

/** One trace event as `--trace` prints it: an HTTP head under a `from > to` line, other steps as `*` lines. */
export function formatTraceEvent(e: TraceRecord): string {
  switch (e.type) {
    case 'route':
      return `* route: ${e.text}`;
    case 'dns':
      return `* dns: ${e.host} is ${e.address} (${ms(e.ms)})`;
    case 'tcp':
      return `* tcp: connected to ${e.to} ${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port} (${ms(e.ms)})`;
    case 'tls': {
      const alpn = e.alpn ? `, alpn ${e.alpn}` : '';
      const who = e.subject ? `, certificate ${e.subject} issued by ${e.issuer ?? '?'}` : '';
      const sni = e.servername ? ` (sni ${e.servername})` : '';
      return `* tls: ${e.protocol ?? 'TLS'} with ${e.to}${sni}${alpn}${who}${e.authorized ? '' : ' [not verified]'} (${ms(e.ms)})`;
    }
    case 'head':
      return `${e.from} > ${e.to}  (${ms(e.ms)})\n${e.text}\n`;
    case 'open':
      return `* open: WebSocket open (${ms(e.ms)})`;
    case 'note':
      return `* ${e.text} (${ms(e.ms)})`;
  }
}
