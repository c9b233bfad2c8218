/**
 * Picks the strongest challenge wsvia can answer and computes the answer, as curl's `--proxy-anyauth` does.
 * Schemes it cannot answer are reported by name, so the error can say what the proxy wanted.
 */
import { basicAuthorization } from './basic.js';
import type { Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import { canAnswerDigest, digestAuthorization, digestStrength } from './digest.js';
import { ntlmNegotiate } from './ntlm.js';

export const AUTH_SCHEMES = ['basic', 'digest', 'ntlm'] as const;
export type AuthScheme = (typeof AUTH_SCHEMES)[number];

/**
 * curl's order for --proxy-anyauth (`pickoneauth`): Negotiate, Digest, NTLM, Basic. wsvia does not answer
 * Negotiate, so Digest is strongest, then NTLM (it does not send the password, but NTLMv2 is weaker than Digest
 * with SHA-256), then Basic.
 */
function strength(c: Challenge): number {
  if (c.scheme === 'digest') return canAnswerDigest(c) ? 10 + digestStrength(c) : -1;
  if (c.scheme === 'ntlm') return 5;
  if (c.scheme === 'basic') return 1;
  return -1;
}

/** The challenge to answer, strongest first; undefined when none is answerable. */
export function pickChallenge(
  challenges: readonly Challenge[],
  allowed?: readonly AuthScheme[],
): Challenge | undefined {
  let best: Challenge | undefined;
  for (const c of challenges) {
    if (allowed && !allowed.includes(c.scheme as AuthScheme)) continue;
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
    default:
      throw new Error(`cannot answer the ${challenge.name} scheme`);
  }
}
