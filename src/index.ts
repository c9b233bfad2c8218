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
export {
  dial,
  dialDetailed,
  resolveRoute,
  toDialTarget,
  type DialTarget,
  type DialResult,
} from './dial/dial.js';
export type { DialOptions, Timeouts } from './dial/options.js';
export { chooseRoute, routeConfigFromEnv, type RouteDecision, type RouteConfig } from './route/choose.js';
export { parseProxyUrl, type ProxyUrl, type ProxyScheme } from './route/proxy-url.js';
export { parseNoProxy, matchNoProxy, type NoProxyRule } from './route/no-proxy.js';
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
export { DEFAULT_LIMITS, type ProxyLimits, type ProxyServerOptions } from './proxy/options.js';
export { runDoctor, type DoctorOptions } from './doctor/run-doctor.js';
export {
  reportToJSON,
  STEP_NAMES,
  type DoctorReport,
  type DoctorStep,
  type IdleResult,
  type StepName,
} from './doctor/report.js';
export { formatReport } from './doctor/format-report.js';
