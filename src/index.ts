/**
 * wsvia's public API. Everything else is internal.
 *
 * @example
 * import { connect } from 'wsvia';
 * const ws = await connect('wss://echo.example/', { proxy: 'http://proxy.corp:3128' });
 */
export { connect, connectInfo, type ConnectOptions, type ConnectInfo } from './client/connect.js';
export { ReconnectingWebSocket, isRetryable, type ReconnectOptions } from './client/reconnecting.js';
export { startKeepalive, closeReason, type PingOptions } from './client/keepalive.js';
export { backoffDelay, type BackoffOptions } from './client/backoff.js';
export { WsviaAgent, wsviaAgent, type WsviaAgentOptions } from './client/agent.js';
export { wsviaConnector, wsviaDispatcher, type UndiciConnector } from './client/undici.js';
export {
  dial,
  dialDetailed,
  dialRoute,
  resolveRoute,
  resolveRoutes,
  toDialTarget,
  type DialTarget,
  type DialResult,
} from './dial/dial.js';
export type { DialOptions, Timeouts } from './dial/options.js';
export { BadProxyList } from './dial/bad-proxies.js';
export { pacSelector } from './dial/pac-selector.js';
export { loadPac, clearPacCache } from './dial/pac-source.js';
export {
  wpadSelector,
  discoverWpad,
  clearWpadCache,
  type WpadOptions,
  type WpadResolver,
  type WpadDiscovery,
} from './dial/wpad.js';
export {
  chooseRoute,
  routeConfigFromEnv,
  routeHops,
  type ProxyInput,
  type RouteDecision,
  type RouteConfig,
} from './route/choose.js';
export { parseProxyUrl, PROXY_SCHEMES, type ProxyUrl, type ProxyScheme } from './route/proxy-url.js';
export { parseNoProxy, matchNoProxy, type NoProxyRule } from './route/no-proxy.js';
export { compilePac, type PacHost, type PacScript } from './route/pac.js';
export { parsePacResult, type PacEntry, type PacResult } from './route/pac-result.js';
export { wpadCandidates, resolvConfDomains, type WpadCandidate } from './route/wpad.js';
export {
  chainSelector,
  environmentSelector,
  failoverSelector,
  staticSelector,
  type ProxySelector,
  type SelectorTarget,
} from './route/selector.js';
export { Credentials } from './auth/credentials.js';
export {
  WsviaError,
  ERROR_CODES,
  HOPS,
  EXIT_CODES,
  exitCodeFor,
  isWsviaError,
  type ErrorCode,
  type Hop,
} from './errors.js';
export { TRACE_CHANNEL, type TraceEvent, type TraceRecord } from './observe/trace.js';
export { formatTraceEvent } from './observe/format-trace.js';
export { startEchoServer, type EchoServer, type EchoServerOptions } from './echo/echo-server.js';
export { ProxyServer, type ListeningAddress } from './proxy/server.js';
export { DEFAULT_ADMISSION, type AdmissionLimits } from './serve/admission.js';
export { DEFAULT_LIMITS, type ProxyLimits, type ProxyServerOptions } from './proxy/options.js';
export type { HostLookup } from './serve/guarded-connect.js';
export { runDoctor, type DoctorOptions } from './doctor/run-doctor.js';
export {
  reportToJSON,
  STEP_NAMES,
  type DoctorReport,
  type DoctorStep,
  type IdleProgress,
  type IdleResult,
  type StepName,
} from './doctor/report.js';
export { formatReport } from './doctor/format-report.js';
export { BridgeServer, startBridge, type Bridge, type BridgeOptions } from './bridge/server.js';
export { startAdmin } from './bridge/admin.js';
export {
  startLocalTunnel,
  startReverseTunnel,
  carry,
  type TunnelOptions,
  type LocalTunnel,
  type ReverseTunnel,
} from './bridge/tunnel.js';
export { parseTargetRule, type TargetRule } from './bridge/allow-target.js';
export { parseTokenFile } from './bridge/token-file.js';
export { parseRecording } from './bridge/replay.js';
export {
  TUNNEL_SUBPROTOCOL,
  REVERSE_SUBPROTOCOL,
  parseControlMessage,
  formatControlMessage,
  type ControlMessage,
} from './protocol/tunnel-control.js';
export { Gateway, type GatewayAddresses, type GatewayOptions } from './gateway/gateway.js';
export {
  configFromNode as gatewayConfigFromNode,
  parseRouteFlag,
  parseSniFlag,
  type GatewayConfig,
  type RouteSpec,
  type RouteOptions,
  BALANCES,
  type Balance,
  type HashKey,
  type UpstreamSpec,
  type SniRoute,
} from './gateway/config.js';
