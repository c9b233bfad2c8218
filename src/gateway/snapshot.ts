/**
 * Turns a validated config into the immutable snapshot connections use: route table, pools, and the files the
 * config names (upstream CA, TLS certificate) read now, so a broken file fails the load or reload rather than a
 * client's handshake later.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { WsviaError } from '../errors.js';
import { serverSecureContext } from '../serve/tls-identity.js';
import type { GatewayConfig } from './config.js';
import { RouteTable } from './route-table.js';
import type { Snapshot } from './runtime.js';
import { UpstreamPool, type UpstreamHealth } from './upstream-pool.js';

function readFile(path: string, what: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new WsviaError(
      'CONFIG_INVALID',
      `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      {
        hop: 'config',
        cause: e,
      },
    );
  }
}

/** The TLS listener's certificate and key as PEM: the terminator's default, for handshakes without a server name. */
export interface TlsIdentity {
  readonly cert: string;
  readonly key: string;
}

/**
 * The snapshot, and apart from it the listener's identity as PEM (kept out of the snapshot, which is public API
 * through {@link Gateway.snapshot}: key material is not).
 */
export function buildSnapshot(
  config: GatewayConfig,
  health: UpstreamHealth,
): { snapshot: Snapshot; identity: TlsIdentity | undefined } {
  const ca = config.upstreamCa === undefined ? undefined : readFile(config.upstreamCa, 'upstream CA file');
  let secureContext: tls.SecureContext | undefined;
  let identity: TlsIdentity | undefined;
  if (config.tls.cert !== undefined && config.tls.key !== undefined) {
    identity = {
      cert: readFile(config.tls.cert, 'TLS certificate'),
      key: readFile(config.tls.key, 'TLS key'),
    };
    secureContext = serverSecureContext(identity, `${config.tls.cert}, ${config.tls.key}`);
  }
  const pools = new Map(config.routes.map((r) => [r.name, new UpstreamPool(r, health)] as const));
  health.retain(new Set(config.routes.flatMap((r) => r.upstreams.map((u) => u.url))));
  return { snapshot: { config, table: new RouteTable(config.routes), pools, ca, secureContext }, identity };
}
