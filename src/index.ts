/** wsvia's public API. */
export { connect, connectInfo, type ConnectInfo, type ConnectOptions } from './client/connect.js';
export { ReconnectingWebSocket } from './client/reconnecting.js';
export {
  dial,
  dialDetailed,
  dialRoute,
  resolveRoute,
  resolveRoutes,
  toDialTarget,
  type DialResult,
  type DialTarget,
} from './dial/dial.js';
export type { DialOptions, Timeouts } from './dial/options.js';
export { BadProxyList } from './dial/bad-proxies.js';
export { pacSelector } from './dial/pac-selector.js';
export { loadPac, clearPacCache } from './dial/pac-source.js';
export {
  ERROR_CODES,
  EXIT_CODES,
  exitCodeFor,
  isWsviaError,
  WsviaError,
  type ErrorCode,
  type Hop,
} from './errors.js';
export { Credentials } from './auth/credentials.js';
export {
  chooseRoute,
  routeConfigFromEnv,
  routeHops,
  type ProxyInput,
  type RouteConfig,
  type RouteDecision,
} from './route/choose.js';
export { parseProxyUrl, PROXY_SCHEMES, type ProxyScheme, type ProxyUrl } from './route/proxy-url.js';
export { compilePac, type PacHost, type PacScript } from './route/pac.js';
export { parsePacResult, type PacEntry, type PacResult } from './route/pac-result.js';
export {
  chainSelector,
  environmentSelector,
  failoverSelector,
  staticSelector,
  type ProxySelector,
  type SelectorTarget,
} from './route/selector.js';
export { TRACE_CHANNEL, type TraceEvent, type TraceRecord } from './observe/trace.js';
export { WsviaAgent, wsviaAgent, type WsviaAgentOptions } from './client/agent.js';
export { wsviaConnector, wsviaDispatcher, type UndiciConnector } from './client/undici.js';
