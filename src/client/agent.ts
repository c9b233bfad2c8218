/**
 * `wsviaAgent(options)`: an `http.Agent` whose connections are opened by wsvia's dial, so `ws`, `http.request`
 * and `https.request` follow wsvia routes (environment, PAC, SOCKS, chains, proxy authentication) with no change
 * but the `agent` option. TLS to the target is done by the dial (with its typed errors), so one agent serves
 * both http:/ws: and https:/wss: requests: whether a request is secure is read from its options, never guessed
 * (proxy-agents' trap 1 of STYLE.md).
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { dialDetailed } from '../dial/dial.js';
import type { DialOptions } from '../dial/options.js';

/** Options of {@link WsviaAgent}: wsvia's dial options, and whether connections are secure and kept alive. */
export interface WsviaAgentOptions extends DialOptions {
  /** Force every connection secure (true) or plain (false); by default each request's protocol decides. */
  readonly secure?: boolean;
  /** Keep connections for reuse (http.Agent's keepAlive; default false). */
  readonly keepAlive?: boolean;
}

interface RequestOptions {
  readonly host?: string | null;
  readonly hostname?: string | null;
  readonly port?: number | string | null;
  readonly protocol?: string | null;
  readonly servername?: string;
  readonly defaultPort?: number;
  readonly _defaultAgent?: { readonly protocol?: string };
}

/** Whether the request is https:/wss:, from what http(s).request and ws put in its options. */
export function isSecureRequest(o: RequestOptions): boolean {
  const p = o.protocol ?? o._defaultAgent?.protocol;
  return p === 'https:' || p === 'wss:';
}

/**
 * An `http.Agent` that opens its connections with wsvia's dial (see {@link wsviaAgent}): pass it as `agent` to `ws`,
 * `http.request` or `https.request`.
 */
export class WsviaAgent extends http.Agent {
  readonly #options: WsviaAgentOptions;

  constructor(options: WsviaAgentOptions = {}) {
    super({ keepAlive: options.keepAlive ?? false });
    this.#options = options;
    // http.Agent says 'http:', and Node refuses an agent whose protocol differs from the URL's. This agent
    // serves both, so it declares none (Node then checks against the default agent of http or https).
    (this as unknown as { protocol: string | undefined }).protocol = undefined;
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    const o = options as RequestOptions;
    const secure = this.#options.secure ?? isSecureRequest(o);
    const host = String(o.hostname ?? o.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
    const port = Number(o.port ?? o.defaultPort ?? (secure ? 443 : 80));
    const { secure: _s, keepAlive: _k, ...dialOptions } = this.#options;
    dialDetailed(
      { host, port, tls: secure },
      {
        ...dialOptions,
        ...(o.servername === undefined || o.servername === '' ? {} : { servername: o.servername }),
        alpn: dialOptions.alpn ?? ['http/1.1'],
      },
    ).then(
      ({ socket }) => {
        callback?.(null, socket);
        // The dial hands the stream out paused; the HTTP client attaches its parser on the next tick.
        process.nextTick(() => socket.resume());
      },
      (e: unknown) => callback?.(e instanceof Error ? e : new Error(String(e)), undefined as never),
    );
    return undefined;
  }
}

/**
 * An agent for `ws`, `http.request` and `https.request` that connects along wsvia routes.
 *
 * @example
 * import WebSocket from 'ws';
 * const ws = new WebSocket('wss://echo.example/', { agent: wsviaAgent({ pac: 'http://wpad.corp/wpad.dat' }) });
 */
export function wsviaAgent(options: WsviaAgentOptions = {}): WsviaAgent {
  return new WsviaAgent(options);
}
