/**
 * What a client does with a proxy's 407, as one object without sockets (sans-I/O, as python-websockets and h11
 * keep their protocols): a 407 head goes in, and out comes the `Proxy-Authorization` to send on the same
 * connection, the same after reconnecting (the proxy closed it), or the error to fail with. Basic and Digest
 * answer once; NTLM takes its three legs on one connection; Negotiate (RFC 4559) as many as the proxy asks. The
 * one I/O a scheme needs, a Kerberos context that talks to the KDC, is handed in by the caller.
 */
import { randomBytes } from 'node:crypto';
import { WsviaError, type PeerAnswer } from '../errors.js';
import { selectedHeaders } from '../protocol/connect-client.js';
import type { ResponseHead } from '../protocol/head.js';
import { getHeaderValues } from '../protocol/headers.js';
import { basicAuthorization } from './basic.js';
import { describeSchemes, parseChallenges, type Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import { ntlmAuthenticate, parseNtlmChallenge } from './ntlm.js';
import { answerChallenge, negotiateUsable, pickChallenge, type AuthScheme } from './select.js';

/** One Negotiate exchange: the first token, then a token for each continuation the proxy sends. */
export interface NegotiateContext {
  /** The next `Proxy-Authorization` value for the proxy's token (empty for the first leg). */
  next(token: string): Promise<string>;
}

export interface ProxyAuthOptions {
  /** The proxy as shown in messages (password redacted), and its host (Negotiate's service is HTTP@host). */
  readonly proxy: { readonly display: string; readonly host: string };
  /** The CONNECT target, `host:port`. */
  readonly target: string;
  readonly credentials: Credentials | undefined;
  readonly schemes: readonly AuthScheme[] | undefined;
  /** Starts a Kerberos context for HTTP@host (the caller's I/O). */
  readonly startNegotiate: (host: string, proxy: string) => Promise<NegotiateContext>;
  readonly random?: (n: number) => Buffer;
  readonly now?: () => number;
  /** CONNECT requests answered 407 before giving up (default 4). */
  readonly maxRounds?: number;
}

/** What to do after a 407. `note` is for the trace. */
export type AuthAction =
  | { readonly kind: 'send'; readonly authorization: string; readonly note?: string }
  | { readonly kind: 'reconnect'; readonly authorization: string; readonly note?: string }
  | { readonly kind: 'fail'; readonly error: WsviaError };

/** The status line, selected headers and a body excerpt of a proxy's answer, for errors. */
export function answerOf(head: ResponseHead, bodyExcerpt: string): PeerAnswer {
  return {
    statusLine: `HTTP/${head.version} ${head.status}${head.reason ? ` ${head.reason}` : ''}`,
    status: head.status,
    headers: selectedHeaders(head),
    ...(bodyExcerpt ? { bodyExcerpt } : {}),
  };
}

interface Answer407 {
  readonly head: ResponseHead;
  readonly body: string;
  /** The proxy keeps the connection open (it may be answered on it). */
  readonly reusable: boolean;
  readonly challenges: Challenge[];
}

export class ProxyAuthSession {
  readonly #o: ProxyAuthOptions;
  #rounds = 0;
  #sentCredentials = false;
  // NTLM authenticates the connection: NEGOTIATE, the proxy's CHALLENGE, then AUTHENTICATE on the same one.
  #ntlmLeg: 'none' | 'negotiated' | 'authenticated' = 'none';
  // Negotiate may also take several legs; its context lives as long as the connection.
  #negotiate: NegotiateContext | undefined;

  constructor(options: ProxyAuthOptions) {
    this.#o = options;
  }

  /**
   * The `Proxy-Authorization` for the first CONNECT, before any 407: Basic when it is the only scheme allowed
   * (curl's --proxy-basic), which saves a round trip; a 407 after it means the credentials were refused.
   */
  preemptive(): string | undefined {
    const { credentials, schemes } = this.#o;
    if (!credentials || schemes?.length !== 1 || schemes[0] !== 'basic') return undefined;
    this.#sentCredentials = true;
    return basicAuthorization(credentials);
  }

  /** Handles one 407; never throws (a failure is the `fail` action). */
  async receive407(head: ResponseHead, body: string, reusable: boolean): Promise<AuthAction> {
    const a: Answer407 = {
      head,
      body,
      reusable,
      challenges: parseChallenges(getHeaderValues(head.headers, 'proxy-authenticate')),
    };
    try {
      const action = await this.#next(a);
      if (action.kind !== 'fail' && ++this.#rounds >= (this.#o.maxRounds ?? 4))
        return { kind: 'fail', error: this.#authRequired(undefined, [], true) };
      return action;
    } catch (e) {
      if (e instanceof WsviaError) return { kind: 'fail', error: e };
      throw e;
    }
  }

  async #next(a: Answer407): Promise<AuthAction> {
    const { credentials } = this.#o;
    const ntlm = a.challenges.find((c) => c.scheme === 'ntlm' && c.token68 !== undefined);
    if (this.#ntlmLeg === 'negotiated' && ntlm?.token68 !== undefined && credentials)
      return this.#ntlmAuthenticate(a, ntlm.token68, credentials);
    const negotiate = a.challenges.find((c) => c.scheme === 'negotiate');
    if (this.#negotiate) {
      // RFC 4559 section 5: a 407 carrying a token continues the exchange; a bare `Negotiate` rejects it.
      if (negotiate?.token68 === undefined) return this.#fail(this.#negotiateRejected(a));
      if (!a.reusable) return this.#fail(this.#closedMidway(a, 'Negotiate'));
      const authorization = await this.#negotiate.next(negotiate.token68);
      return authorization ? { kind: 'send', authorization } : this.#fail(this.#negotiateRejected(a));
    }
    if (negotiate && negotiateUsable(credentials, this.#o.schemes)) {
      this.#negotiate = await this.#o.startNegotiate(this.#o.proxy.host, this.#o.proxy.display);
      const authorization = await this.#negotiate.next('');
      this.#sentCredentials = true;
      const note = `negotiate: answering with a Kerberos ticket for HTTP@${this.#o.proxy.host}`;
      return { kind: a.reusable ? 'send' : 'reconnect', authorization, note };
    }
    const stale = a.challenges.some((c) => c.scheme === 'digest' && c.params.stale?.toLowerCase() === 'true');
    if (!credentials || (this.#sentCredentials && !stale))
      return this.#fail(this.#authRequired(a, a.challenges, this.#sentCredentials));
    const chosen = pickChallenge(a.challenges, this.#o.schemes, credentials);
    if (!chosen) return this.#fail(this.#authRequired(a, a.challenges, false));
    const authorization = answerChallenge(chosen, credentials, { method: 'CONNECT', uri: this.#o.target });
    if (chosen.scheme === 'ntlm') this.#ntlmLeg = 'negotiated';
    this.#sentCredentials = true;
    return a.reusable
      ? { kind: 'send', authorization }
      : {
          kind: 'reconnect',
          authorization,
          note: 'proxy closed the connection after 407: reconnecting to answer',
        };
  }

  async #ntlmAuthenticate(a: Answer407, token68: string, credentials: Credentials): Promise<AuthAction> {
    if (!a.reusable) {
      return this.#fail(
        new WsviaError(
          'PROXY_AUTH_REQUIRED',
          `proxy ${this.#o.proxy.display} closed the connection after its NTLM challenge for CONNECT ${this.#o.target}`,
          {
            ...this.#fields(a),
            hint: 'NTLM needs the three legs on one connection; a proxy or load balancer in between may not keep it (try Basic or Digest)',
          },
        ),
      );
    }
    const challenge = parseNtlmChallenge(token68, `proxy ${this.#o.proxy.display}`);
    const authorization = await ntlmAuthenticate(challenge, credentials, {
      random: this.#o.random ?? randomBytes,
      now: this.#o.now ?? Date.now,
    });
    this.#ntlmLeg = 'authenticated';
    const from = challenge.targetName || 'the proxy';
    return {
      kind: 'send',
      authorization,
      note: `ntlm: challenge from ${from}; answering on the same connection`,
    };
  }

  #fail(error: WsviaError): AuthAction {
    return { kind: 'fail', error };
  }

  #fields(a: Answer407 | undefined): {
    hop: 'proxy';
    proxy: string;
    target: string;
    answer?: PeerAnswer;
  } {
    return {
      hop: 'proxy',
      proxy: this.#o.proxy.display,
      target: this.#o.target,
      ...(a ? { answer: answerOf(a.head, a.body) } : {}),
    };
  }

  #negotiateRejected(a: Answer407): WsviaError {
    return new WsviaError(
      'PROXY_AUTH_REQUIRED',
      `proxy ${this.#o.proxy.display} rejected the Kerberos ticket (Negotiate) for CONNECT ${this.#o.target}`,
      {
        ...this.#fields(a),
        hint: `check that the proxy's keytab holds HTTP/${this.#o.proxy.host} for your realm, and that your ticket (klist) is valid`,
      },
    );
  }

  #closedMidway(a: Answer407, scheme: string): WsviaError {
    return new WsviaError(
      'PROXY_AUTH_REQUIRED',
      `proxy ${this.#o.proxy.display} closed the connection in the middle of ${scheme} for CONNECT ${this.#o.target}`,
      {
        ...this.#fields(a),
        hint: `${scheme} needs its legs on one connection; a proxy or load balancer in between may not keep it (try Basic or Digest)`,
      },
    );
  }

  #authRequired(a: Answer407 | undefined, challenges: Challenge[], rejected: boolean): WsviaError {
    const { proxy, target, credentials } = this.#o;
    const offered = describeSchemes(challenges);
    const offers = offered ? ` (offers ${offered})` : '';
    const base = { ...this.#fields(a), details: { schemes: challenges.map((c) => c.name) } };
    const status = a ? `"${a.head.status}${a.head.reason ? ` ${a.head.reason}` : ''}"` : '407';
    if (rejected) {
      return new WsviaError(
        'PROXY_AUTH_REQUIRED',
        `proxy ${proxy.display} rejected the credentials of user "${credentials?.user ?? ''}" for CONNECT ${target}${offers}`,
        {
          ...base,
          hint: 'check the user name and password (--proxy-user user:pass, or user:pass@ in the proxy URL)',
        },
      );
    }
    if (credentials && challenges.length > 0) {
      return new WsviaError(
        'PROXY_AUTH_REQUIRED',
        `proxy ${proxy.display} answered ${status} to CONNECT ${target}${offers}, and wsvia cannot answer any of these schemes`,
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
      `proxy ${proxy.display} answered ${status} to CONNECT ${target}${offers}`,
      {
        ...base,
        hint: 'pass --proxy-user user:pass or put user:pass@ in the proxy URL',
      },
    );
  }
}
