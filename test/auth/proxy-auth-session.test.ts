import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Credentials } from '../../src/auth/credentials.js';
import {
  ProxyAuthSession,
  type AuthAction,
  type NegotiateContext,
  type ProxyAuthOptions,
} from '../../src/auth/proxy-auth-session.js';
import type { ResponseHead } from '../../src/protocol/head.js';

/** A 407 head offering the given challenges (one Proxy-Authenticate field each). */
function h407(...challenges: string[]): ResponseHead {
  return {
    kind: 'response',
    version: '1.1',
    status: 407,
    reason: 'Proxy Authentication Required',
    headers: challenges.map((c): [string, string] => ['Proxy-Authenticate', c]),
  };
}

// squid's fake NTLM helper's CHALLENGE (see ntlm.test.ts).
const NTLM_CHALLENGE = 'TlRMTVNTUAACAAAACQAJAK6qqqoHggiiT2QLiISoxMQAAAAAAAA6AFdPUktHUk9VUA==';
const DIGEST = 'Digest realm="r", qop="auth", algorithm=MD5, nonce="n1"';

function session(over: Partial<ProxyAuthOptions> = {}): ProxyAuthSession {
  return new ProxyAuthSession({
    proxy: { display: 'http://proxy:3128', host: 'proxy' },
    target: 'echo.example:443',
    credentials: new Credentials('alice', 'pw'),
    schemes: undefined,
    startNegotiate: () => Promise.reject(new Error('no Kerberos in this test')),
    random: (n) => Buffer.alloc(n, 7),
    now: () => 0,
    ...over,
  });
}

function failed(a: AuthAction): string {
  assert.equal(a.kind, 'fail');
  assert.equal(a.error.code, 'PROXY_AUTH_REQUIRED');
  return a.error.message;
}

describe('ProxyAuthSession', () => {
  it('Basic: answers on the same connection, and a second 407 means the credentials were rejected', async () => {
    const s = session();
    const a = await s.receive407(h407('Basic realm="r"'), '', true);
    assert.deepEqual(a, {
      kind: 'send',
      authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}`,
    });
    assert.match(
      failed(await s.receive407(h407('Basic realm="r"'), '', true)),
      /rejected the credentials of user "alice"/,
    );
  });

  it('preemptive: Basic alone is sent before any 407, and a 407 after it means rejected; other schemes wait', async () => {
    const s = session({ schemes: ['basic'] });
    assert.equal(s.preemptive(), `Basic ${Buffer.from('alice:pw').toString('base64')}`);
    assert.match(failed(await s.receive407(h407('Basic realm="r"'), '', true)), /rejected the credentials/);
    assert.equal(session().preemptive(), undefined, 'any-auth learns the scheme from the 407');
    assert.equal(session({ schemes: ['basic', 'digest'] }).preemptive(), undefined);
    assert.equal(session({ schemes: ['basic'], credentials: undefined }).preemptive(), undefined);
  });

  it('a proxy that closed after its 407: reconnect, then send', async () => {
    const a = await session().receive407(h407('Basic realm="r"'), '', false);
    assert.equal(a.kind, 'reconnect');
    assert.ok(a.kind === 'reconnect' && a.authorization.startsWith('Basic '));
    assert.match(a.kind === 'reconnect' ? (a.note ?? '') : '', /reconnecting/);
  });

  it('the strongest scheme offered is answered: Digest over Basic', async () => {
    const a = await session().receive407(h407('Basic realm="r"', DIGEST), '', true);
    assert.ok(a.kind === 'send' && a.authorization.startsWith('Digest '), JSON.stringify(a));
  });

  it('Digest stale=true after credentials were sent: answered again with the fresh nonce', async () => {
    const s = session();
    await s.receive407(h407(DIGEST), '', true);
    const a = await s.receive407(h407(`${DIGEST.replace('n1', 'n2')}, stale=true`), '', true);
    assert.ok(a.kind === 'send' && a.authorization.includes('nonce="n2"'));
  });

  it('stale forever: gives up after four 407s', async () => {
    const s = session();
    const kinds: string[] = [];
    for (let i = 0; i < 4; i++)
      kinds.push((await s.receive407(h407(`${DIGEST}, stale=true`), '', true)).kind);
    assert.deepEqual(kinds, ['send', 'send', 'send', 'fail']);
  });

  it('no credentials: the error says how to give them, naming the schemes offered', async () => {
    const m = failed(await session({ credentials: undefined }).receive407(h407('Basic realm="r"'), '', true));
    assert.match(
      m,
      /answered "407 Proxy Authentication Required" to CONNECT echo\.example:443 \(offers Basic\)/,
    );
  });

  it('only schemes wsvia cannot answer: says so', async () => {
    assert.match(
      failed(await session().receive407(h407('Bearer realm="r"'), '', true)),
      /cannot answer any of these schemes/,
    );
  });

  it('NTLM: NEGOTIATE, then AUTHENTICATE on the same connection', async () => {
    const s = session();
    const first = await s.receive407(h407('NTLM'), '', true);
    assert.ok(first.kind === 'send' && first.authorization.startsWith('NTLM TlRMTVNTUAAB'));
    const second = await s.receive407(h407(`NTLM ${NTLM_CHALLENGE}`), '', true);
    assert.ok(second.kind === 'send' && second.authorization.startsWith('NTLM TlRMTVNTUAAD'));
    assert.match(second.note ?? '', /^ntlm: challenge from .*; answering on the same connection$/);
  });

  it('NTLM: a proxy that closes after its CHALLENGE fails (the legs need one connection)', async () => {
    const s = session();
    await s.receive407(h407('NTLM'), '', true);
    assert.match(
      failed(await s.receive407(h407(`NTLM ${NTLM_CHALLENGE}`), '', false)),
      /closed the connection after its NTLM challenge/,
    );
  });

  describe('Negotiate, with a fake Kerberos context', () => {
    const tokens: string[] = [];
    const kerberos = (): Promise<NegotiateContext> =>
      Promise.resolve({
        next: (token: string) => {
          tokens.push(token);
          return Promise.resolve(token === 'reject' ? '' : `Negotiate leg${tokens.length}`);
        },
      });
    const negotiating = (): ProxyAuthSession =>
      session({ credentials: undefined, schemes: ['negotiate'], startNegotiate: kerberos });

    it('answers each continuation token on the same connection', async () => {
      tokens.length = 0;
      const s = negotiating();
      const first = await s.receive407(h407('Negotiate'), '', true);
      assert.deepEqual(first, {
        kind: 'send',
        authorization: 'Negotiate leg1',
        note: 'negotiate: answering with a Kerberos ticket for HTTP@proxy',
      });
      assert.deepEqual(await s.receive407(h407('Negotiate c2'), '', true), {
        kind: 'send',
        authorization: 'Negotiate leg2',
      });
      assert.deepEqual(tokens, ['', 'c2']);
    });

    it('a bare Negotiate after the ticket was sent rejects it; a close midway fails', async () => {
      const s = negotiating();
      await s.receive407(h407('Negotiate'), '', true);
      assert.match(failed(await s.receive407(h407('Negotiate'), '', true)), /rejected the Kerberos ticket/);
      const t = negotiating();
      await t.receive407(h407('Negotiate'), '', true);
      assert.match(
        failed(await t.receive407(h407('Negotiate c2'), '', false)),
        /closed the connection in the middle of Negotiate/,
      );
    });

    it('a context that cannot start is the fail action, not a throw', async () => {
      const { WsviaError } = await import('../../src/errors.js');
      const s = session({
        credentials: undefined,
        schemes: ['negotiate'],
        startNegotiate: () =>
          Promise.reject(
            new WsviaError('PROXY_AUTH_REQUIRED', 'no usable Kerberos ticket', { hop: 'proxy' }),
          ),
      });
      assert.match(failed(await s.receive407(h407('Negotiate'), '', true)), /no usable Kerberos ticket/);
    });
  });
});
