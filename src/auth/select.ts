/**
 * Picks the strongest challenge wsvia can answer and computes the answer, as curl's `--proxy-anyauth` does.
 * Schemes it cannot answer are reported by name, so the error can say what the proxy wanted.
 */
import { basicAuthorization } from './basic.js';
import type { Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import { canAnswerDigest, digestAuthorization, digestStrength } from './digest.js';
import { ntlmNegotiate } from './ntlm.js';

export const AUTH_SCHEMES = ['basic', 'digest', 'ntlm', 'negotiate'] as const;
export type AuthScheme = (typeof AUTH_SCHEMES)[number];

/**
 * curl's order for --proxy-anyauth (`pickoneauth`): Negotiate, Digest, NTLM, Basic. Negotiate (Kerberos) is
 * strongest when it is answerable (see `negotiateUsable`), then Digest, then NTLM (it does not send the password,
 * but NTLMv2 is weaker than Digest with SHA-256), then Basic.
 */
function strength(c: Challenge): number {
  if (c.scheme === 'negotiate') return 20;
  if (c.scheme === 'digest') return canAnswerDigest(c) ? 10 + digestStrength(c) : -1;
  if (c.scheme === 'ntlm') return 5;
  if (c.scheme === 'basic') return 1;
  return -1;
}

/**
 * Negotiate takes its credentials from the Kerberos ticket cache, not from a password: it is answered when asked
 * for by name (`--proxy-negotiate`), or under any-auth when the credentials are empty, curl's `-U :` meaning
 * "use the ticket cache". Otherwise a password given for Digest/NTLM/Basic is used with one of them.
 */
export function negotiateUsable(
  credentials: Credentials | undefined,
  allowed?: readonly AuthScheme[],
): boolean {
  if (allowed) return allowed.includes('negotiate');
  return credentials !== undefined && credentials.user === '' && credentials.reveal() === '';
}

/** The challenge to answer, strongest first; undefined when none is answerable. */
export function pickChallenge(
  challenges: readonly Challenge[],
  allowed?: readonly AuthScheme[],
  credentials?: Credentials,
): Challenge | undefined {
  let best: Challenge | undefined;
  const negotiate = negotiateUsable(credentials, allowed);
  for (const c of challenges) {
    if (allowed && !allowed.includes(c.scheme as AuthScheme)) continue;
    if (c.scheme === 'negotiate' && !negotiate) continue;
    const s = strength(c);
    if (s > 0 && (best === undefined || s > strength(best))) best = c;
  }
  return best;
}

/** The `Proxy-Authorization` value answering `challenge` for this request. */
export function answerChallenge(
  challenge: Challenge,
  credentials: Credentials,
  request: { method: string; uri: string },
): string {
  switch (challenge.scheme) {
    case 'basic':
      return basicAuthorization(credentials);
    case 'digest':
      return digestAuthorization(challenge, credentials, request);
    case 'ntlm':
      // The first leg; the third answers the proxy's CHALLENGE (ntlmAuthenticate), on the same connection.
      return ntlmNegotiate();
    case 'negotiate':
      // Negotiate needs the GSS-API library (asynchronous, talks to the KDC): dial/negotiate.ts answers it.
      throw new Error('Negotiate is answered by dial/negotiate.ts');
    default:
      throw new Error(`cannot answer the ${challenge.name} scheme`);
  }
}
