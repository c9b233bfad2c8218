/**
 * The CONNECT exchange with an HTTP(S) proxy, driving the sans-I/O {@link ConnectClient} and
 * {@link ProxyAuthSession}: send the request, hand each 407 to the session and do what it says (answer on the same
 * connection, or on a new one when the proxy closed it), and turn every refusal into a typed error that quotes
 * the proxy.
 */
import type { Duplex } from 'node:stream';
import type { Credentials } from '../auth/credentials.js';
import { answerOf, ProxyAuthSession } from '../auth/proxy-auth-session.js';
import type { AuthScheme } from '../auth/select.js';
import { WsviaError } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import {
  buildConnectRequest,
  ConnectClient,
  retryAfterSeconds,
  type ConnectResult,
} from '../protocol/connect-client.js';
import { getHeaderValues } from '../protocol/headers.js';
import { formatHead, type HeadLimits, type ResponseHead } from '../protocol/head.js';
import { describeProxyStatus, parseProxyStatus } from '../protocol/proxy-status.js';
import { redactHeadText } from '../observe/redact.js';
import type { Tracer } from '../observe/trace.js';
import type { ProxyUrl } from '../route/proxy-url.js';
import { startNegotiate } from './negotiate.js';
import { step } from './wait.js';

export interface TunnelStep {
  readonly proxy: ProxyUrl;
  readonly target: Authority;
  /** Opens a fresh connection to the proxy (TCP, and TLS for https://). Called again when a 407 closes it. */
  readonly connectToProxy: () => Promise<Duplex>;
  readonly headers: readonly (readonly [string, string])[];
  readonly credentials: Credentials | undefined;
  readonly schemes: readonly AuthScheme[] | undefined;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  readonly tracer: Tracer;
  readonly limits: HeadLimits | undefined;
}

export interface Tunnel {
  /** Ready to read: bytes that came glued to the 2xx head have been put back at its front. */
  readonly socket: Duplex;
  readonly head: ResponseHead;
}

/**
 * Sends one CONNECT on `socket` and reads the answer in paused mode ('readable' + read()), so that once the
 * listener is removed the stream is back in its initial state: whoever reads next (a 'data' listener, pipe(),
 * TLS) starts the flow, and the bytes after the head are put back first.
 */
function exchange(socket: Duplex, request: Buffer, s: TunnelStep): Promise<ConnectResult> {
  const peer = `proxy ${s.proxy.display}`;
  const client = new ConnectClient(peer, s.limits);
  const sentAt = s.tracer.elapsed();
  return new Promise<ConnectResult>((resolve, reject) => {
    const done = (): void => {
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', onEnd);
      socket.removeListener('error', onError);
      socket.removeListener('close', onEnd);
    };
    const finish = (r: ConnectResult): void => {
      done();
      if (r.kind === 'tunnel' && r.leftover.length > 0) socket.unshift(Buffer.from(r.leftover));
      s.tracer.emit({
        type: 'head',
        from: 'proxy',
        to: 'client',
        text: redactHeadText(formatHead(r.head)),
        ms: s.tracer.elapsed() - sentAt,
      });
      resolve(r);
    };
    const onReadable = (): void => {
      try {
        let chunk: Buffer | null;
        while ((chunk = socket.read() as Buffer | null) !== null) {
          const r = client.receive(chunk);
          if (r) return finish(r);
        }
      } catch (e) {
        done();
        socket.destroy();
        reject(e);
      }
    };
    const onEnd = (): void => {
      try {
        finish(client.receiveEof());
      } catch (e) {
        done();
        reject(e);
      }
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      done();
      reject(
        new WsviaError(
          'CONNECTION_RESET',
          `${peer} reset the connection while answering CONNECT ${formatAuthority(s.target)} (${err.code ?? err.message})`,
          {
            hop: 'proxy',
            proxy: s.proxy.display,
            target: formatAuthority(s.target),
            cause: err,
          },
        ),
      );
    };
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    s.tracer.emit({
      type: 'head',
      from: 'client',
      to: 'proxy',
      text: redactHeadText(request.toString('latin1').trimEnd()),
      ms: sentAt,
    });
    socket.write(request);
  });
}

/** Opens the tunnel or fails with a typed error. */
export function openHttpTunnel(first: Duplex, s: TunnelStep): Promise<Tunnel> {
  const authority = formatAuthority(s.target);
  return step<Tunnel>(
    s.timeout,
    () =>
      new WsviaError(
        'TUNNEL_TIMEOUT',
        `proxy ${s.proxy.display} did not answer CONNECT ${authority} within ${s.timeout} ms`,
        {
          hop: 'proxy',
          proxy: s.proxy.display,
          target: authority,
          hint: 'the proxy may be stuck reaching the destination, or out of capacity; try again or ask its administrator',
        },
      ),
    s.signal,
    (ctl) => {
      let socket = first;
      let handedOut = false;
      let over = false;
      ctl.onSettle(() => {
        over = true;
        // A socket not handed out (timeout, abort, failure) is closed here.
        if (!handedOut) socket.destroy();
      });
      const run = async (): Promise<Tunnel> => {
        const auth = new ProxyAuthSession({
          proxy: s.proxy,
          target: authority,
          credentials: s.credentials,
          schemes: s.schemes,
          startNegotiate,
        });
        let authorization = auth.preemptive();
        for (;;) {
          const headers: [string, string][] = authorization ? [['Proxy-Authorization', authorization]] : [];
          for (const [k, v] of s.headers) headers.push([k, v]);
          const result = await exchange(socket, buildConnectRequest(s.target, headers), s);
          if (result.kind === 'tunnel') return { socket, head: result.head };
          if (result.head.status !== 407) throw refusal(result.head, result.bodyExcerpt, s);
          const action = await auth.receive407(result.head, result.bodyExcerpt, result.reusable);
          if (action.kind === 'fail') throw action.error;
          if (action.note) s.tracer.emit({ type: 'note', text: action.note, ms: s.tracer.elapsed() });
          authorization = action.authorization;
          if (action.kind === 'reconnect') {
            socket.destroy();
            socket = await s.connectToProxy();
          }
        }
      };
      run().then(
        (t) => {
          if (over) return void t.socket.destroy();
          handedOut = true;
          ctl.resolve(t);
        },
        (e: unknown) => {
          if (over) socket.destroy();
          ctl.reject(e);
        },
      );
    },
  );
}

function proxyStatusNote(head: ResponseHead): string {
  const ps = parseProxyStatus(getHeaderValues(head.headers, 'proxy-status'));
  return ps.length ? ` (Proxy-Status: ${describeProxyStatus(ps)})` : '';
}

function refusal(head: ResponseHead, body: string, s: TunnelStep): WsviaError {
  const authority = formatAuthority(s.target);
  const status = `${head.status}${head.reason ? ` ${head.reason}` : ''}`;
  const summary = `proxy ${s.proxy.display} answered "${status}" to CONNECT ${authority}${proxyStatusNote(head)}`;
  const base = {
    hop: 'proxy' as const,
    proxy: s.proxy.display,
    target: authority,
    answer: answerOf(head, body),
  };
  const retry = retryAfterSeconds(head);
  switch (head.status) {
    case 502:
      return new WsviaError('PROXY_UNAVAILABLE', summary, {
        ...base,
        hint: "the proxy could not reach the destination: check the host and port, or the proxy's own network",
      });
    case 503:
      return new WsviaError('PROXY_UNAVAILABLE', summary, {
        ...base,
        hint: `the proxy is out of capacity (no tunnel left: its CONNECT pool may be empty) or the destination is down; retry ${retry === undefined ? 'later' : `after ${retry} s`}, or ask its administrator to raise the limit`,
      });
    case 504:
      return new WsviaError('PROXY_UNAVAILABLE', summary, {
        ...base,
        hint: 'the proxy timed out reaching the destination: is the host up, and the port open?',
      });
    case 500:
      return new WsviaError('PROXY_UNAVAILABLE', summary, {
        ...base,
        hint: 'the proxy failed internally; its body or logs say why',
      });
    case 403:
      return new WsviaError('PROXY_REFUSED', summary, {
        ...base,
        hint: `the proxy's rules deny CONNECT to ${authority}: many allow only port 443 (squid's default), so use wss:// on 443, or ask for the port to be allowed`,
      });
    case 400:
    case 405:
    case 501:
      return new WsviaError('PROXY_REFUSED', summary, {
        ...base,
        hint: 'the proxy does not accept CONNECT tunnels; use another proxy, or a direct connection',
      });
    case 429:
      return new WsviaError('PROXY_REFUSED', summary, {
        ...base,
        hint: `too many tunnels from this client; retry ${retry === undefined ? 'later' : `after ${retry} s`}`,
      });
    default:
      return new WsviaError(head.status >= 500 ? 'PROXY_UNAVAILABLE' : 'PROXY_REFUSED', summary, {
        ...base,
        hint: 'the proxy refused the tunnel; its answer above says why',
      });
  }
}
