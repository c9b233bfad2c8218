/**
 * The CONNECT exchange with an HTTP(S) proxy, driving the sans-I/O {@link ConnectClient}: send the request,
 * answer a 407 with the strongest scheme offered (on the same connection when the proxy keeps it open, on a new
 * one when it closes it), and turn every refusal into a typed error that quotes the proxy.
 */
import crypto from 'node:crypto';
import type { Duplex } from 'node:stream';
import { parseChallenges, describeSchemes, type Challenge } from '../auth/challenge.js';
import type { Credentials } from '../auth/credentials.js';
import { ntlmAuthenticate, parseNtlmChallenge } from '../auth/ntlm.js';
import { answerChallenge, negotiateUsable, pickChallenge, type AuthScheme } from '../auth/select.js';
import { WsviaError, type PeerAnswer } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import {
  buildConnectRequest,
  ConnectClient,
  retryAfterSeconds,
  selectedHeaders,
  type ConnectResult,
} from '../protocol/connect-client.js';
import { getHeaderValues } from '../protocol/headers.js';
import { formatHead, type HeadLimits, type ResponseHead } from '../protocol/head.js';
import { describeProxyStatus, parseProxyStatus } from '../protocol/proxy-status.js';
import { redactHeadText } from '../observe/redact.js';
import type { Tracer } from '../observe/trace.js';
import type { ProxyUrl } from '../route/proxy-url.js';
import { startNegotiate, type NegotiateContext } from './negotiate.js';
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

export function answerOf(head: ResponseHead, bodyExcerpt: string): PeerAnswer {
  return {
    statusLine: `HTTP/${head.version} ${head.status}${head.reason ? ` ${head.reason}` : ''}`,
    status: head.status,
    headers: selectedHeaders(head),
    ...(bodyExcerpt ? { bodyExcerpt } : {}),
  };
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
        let authorization: string | undefined;
        let sentCredentials = false;
        // NTLM authenticates the connection: NEGOTIATE, the proxy's CHALLENGE, then AUTHENTICATE on the same one.
        let ntlmLeg: 'none' | 'negotiated' | 'authenticated' = 'none';
        // Negotiate (RFC 4559) may also take several legs; its context lives as long as the connection.
        let negotiate: NegotiateContext | undefined;
        for (let round = 0; round < 4; round++) {
          const headers: [string, string][] = [];
          if (authorization) headers.push(['Proxy-Authorization', authorization]);
          for (const [k, v] of s.headers) headers.push([k, v]);
          const result = await exchange(socket, buildConnectRequest(s.target, headers), s);
          if (result.kind === 'tunnel') return { socket, head: result.head };
          if (result.head.status !== 407) throw refusal(result.head, result.bodyExcerpt, s);
          const challenges = parseChallenges(getHeaderValues(result.head.headers, 'proxy-authenticate'));
          const ntlmChallenge = challenges.find((c) => c.scheme === 'ntlm' && c.token68 !== undefined);
          if (ntlmLeg === 'negotiated' && ntlmChallenge && s.credentials) {
            if (!result.reusable) {
              throw new WsviaError(
                'PROXY_AUTH_REQUIRED',
                `proxy ${s.proxy.display} closed the connection after its NTLM challenge for CONNECT ${authority}`,
                {
                  hop: 'proxy',
                  proxy: s.proxy.display,
                  target: authority,
                  answer: answerOf(result.head, result.bodyExcerpt),
                  hint: 'NTLM needs the three legs on one connection; a proxy or load balancer in between may not keep it (try Basic or Digest)',
                },
              );
            }
            const challenge = parseNtlmChallenge(ntlmChallenge.token68 as string, `proxy ${s.proxy.display}`);
            s.tracer.emit({
              type: 'note',
              text: `ntlm: challenge from ${challenge.targetName || 'the proxy'}; answering on the same connection`,
              ms: s.tracer.elapsed(),
            });
            authorization = await ntlmAuthenticate(challenge, s.credentials, {
              random: (n) => crypto.randomBytes(n),
              now: Date.now,
            });
            ntlmLeg = 'authenticated';
            continue;
          }
          const negotiateChallenge = challenges.find((c) => c.scheme === 'negotiate');
          if (negotiate) {
            // RFC 4559 section 5: a 407 carrying a token continues the exchange; a bare `Negotiate` rejects it.
            const token = negotiateChallenge?.token68;
            if (token === undefined) throw negotiateRejected(result.head, result.bodyExcerpt, s);
            if (!result.reusable) throw closedMidway(result.head, result.bodyExcerpt, s, 'Negotiate');
            authorization = await negotiate.next(token);
            if (!authorization) throw negotiateRejected(result.head, result.bodyExcerpt, s);
            continue;
          }
          if (negotiateChallenge && negotiateUsable(s.credentials, s.schemes)) {
            negotiate = await startNegotiate(s.proxy.host, s.proxy.display);
            s.tracer.emit({
              type: 'note',
              text: `negotiate: answering with a Kerberos ticket for HTTP@${s.proxy.host}`,
              ms: s.tracer.elapsed(),
            });
            authorization = await negotiate.next('');
            sentCredentials = true;
            if (!result.reusable) {
              socket.destroy();
              socket = await s.connectToProxy();
            }
            continue;
          }
          const stale = challenges.some(
            (c) => c.scheme === 'digest' && c.params.stale?.toLowerCase() === 'true',
          );
          if (!s.credentials || (sentCredentials && !stale)) {
            throw authRequired(result.head, result.bodyExcerpt, challenges, s, sentCredentials);
          }
          const chosen = pickChallenge(challenges, s.schemes, s.credentials);
          if (!chosen) throw authRequired(result.head, result.bodyExcerpt, challenges, s, false);
          authorization = answerChallenge(chosen, s.credentials, { method: 'CONNECT', uri: authority });
          if (chosen.scheme === 'ntlm') ntlmLeg = 'negotiated';
          sentCredentials = true;
          if (!result.reusable) {
            socket.destroy();
            s.tracer.emit({
              type: 'note',
              text: 'proxy closed the connection after 407: reconnecting to answer',
              ms: s.tracer.elapsed(),
            });
            socket = await s.connectToProxy();
          }
        }
        throw authRequired(undefined, '', [], s, true);
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

function negotiateRejected(head: ResponseHead, body: string, s: TunnelStep): WsviaError {
  const authority = formatAuthority(s.target);
  return new WsviaError(
    'PROXY_AUTH_REQUIRED',
    `proxy ${s.proxy.display} rejected the Kerberos ticket (Negotiate) for CONNECT ${authority}`,
    {
      hop: 'proxy',
      proxy: s.proxy.display,
      target: authority,
      answer: answerOf(head, body),
      hint: `check that the proxy's keytab holds HTTP/${s.proxy.host} for your realm, and that your ticket (klist) is valid`,
    },
  );
}

function closedMidway(head: ResponseHead, body: string, s: TunnelStep, scheme: string): WsviaError {
  const authority = formatAuthority(s.target);
  return new WsviaError(
    'PROXY_AUTH_REQUIRED',
    `proxy ${s.proxy.display} closed the connection in the middle of ${scheme} for CONNECT ${authority}`,
    {
      hop: 'proxy',
      proxy: s.proxy.display,
      target: authority,
      answer: answerOf(head, body),
      hint: `${scheme} needs its legs on one connection; a proxy or load balancer in between may not keep it (try Basic or Digest)`,
    },
  );
}

function authRequired(
  head: ResponseHead | undefined,
  body: string,
  challenges: Challenge[],
  s: TunnelStep,
  rejected: boolean,
): WsviaError {
  const authority = formatAuthority(s.target);
  const offered = describeSchemes(challenges);
  const offers = offered ? ` (offers ${offered})` : '';
  const base = {
    hop: 'proxy' as const,
    proxy: s.proxy.display,
    target: authority,
    ...(head ? { answer: answerOf(head, body) } : {}),
    details: { schemes: challenges.map((c) => c.name) },
  };
  const status = head ? `"${head.status}${head.reason ? ` ${head.reason}` : ''}"` : '407';
  if (rejected) {
    return new WsviaError(
      'PROXY_AUTH_REQUIRED',
      `proxy ${s.proxy.display} rejected the credentials of user "${s.credentials?.user ?? ''}" for CONNECT ${authority}${offers}`,
      {
        ...base,
        hint: 'check the user name and password (--proxy-user user:pass, or user:pass@ in the proxy URL)',
      },
    );
  }
  if (s.credentials && challenges.length > 0) {
    return new WsviaError(
      'PROXY_AUTH_REQUIRED',
      `proxy ${s.proxy.display} answered ${status} to CONNECT ${authority}${offers}, and wsvia cannot answer any of these schemes`,
      {
        ...base,
        hint: challenges.some((c) => c.scheme === 'negotiate')
          ? "the proxy offers Negotiate (Kerberos/SPNEGO): ask for it with --proxy-negotiate (or proxyAuthSchemes: ['negotiate']) and -U : after kinit; it needs the optional kerberos package (npm install kerberos)"
          : 'wsvia answers Negotiate, Digest, NTLM and Basic; ask for one of them to be enabled',
      },
    );
  }
  return new WsviaError(
    'PROXY_AUTH_REQUIRED',
    `proxy ${s.proxy.display} answered ${status} to CONNECT ${authority}${offers}`,
    {
      ...base,
      hint: 'pass --proxy-user user:pass or put user:pass@ in the proxy URL',
    },
  );
}
