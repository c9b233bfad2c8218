/**
 * The last guard before a report is printed: every value that is a secret in the options (proxy password,
 * Authorization or Cookie headers) is replaced wherever it might still appear. The report is built from redacted
 * traces already (observe/redact.ts); this catches what a peer may have echoed back in a body or a header.
 */
import { Credentials } from '../auth/credentials.js';
import type { ConnectOptions } from '../client/connect.js';
import { normalizeHeaders } from '../dial/options.js';
import type { RouteDecision } from '../route/choose.js';
import type { DoctorReport, DoctorStep } from './report.js';

const SECRET_HEADERS = /^(authorization|proxy-authorization|cookie)$/i;

/** Query parameters that carry secrets, named as observe/redact.ts's `redactUrl` recognises them. */
const SECRET_QUERY = /token|secret|password|key|auth/i;

export function secretsOf(options: ConnectOptions, route: RouteDecision | undefined, url?: string): string[] {
  const out: string[] = [];
  // A token in the URL's query travels in the upgrade request line, which header redaction does not cover.
  try {
    if (url !== undefined)
      for (const [k, v] of new URL(url).searchParams)
        if (SECRET_QUERY.test(k)) out.push(v, encodeURIComponent(v));
  } catch {
    // Not a URL: nothing was sent either.
  }
  const auth = options.proxyAuth;
  if (auth !== undefined) out.push((typeof auth === 'string' ? Credentials.parse(auth) : auth).reveal());
  const fromUrl = route?.proxy?.credentials?.reveal();
  if (fromUrl) out.push(fromUrl, encodeURIComponent(fromUrl));
  for (const [k, v] of Object.entries(options.headers ?? {})) if (SECRET_HEADERS.test(k)) out.push(v);
  const ph = options.proxyHeaders;
  const pairs: [string, string][] = normalizeHeaders(ph);
  for (const [k, v] of pairs) if (SECRET_HEADERS.test(k)) out.push(v);
  // Header values also appear without their scheme (`Bearer abc` -> `abc`).
  for (const v of [...out]) {
    const token = /^\S+\s+(\S{4,})$/.exec(v)?.[1];
    if (token) out.push(token);
  }
  // Very short strings would blank out ordinary words; such secrets are not worth much anyway.
  return [...new Set(out.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
}

function scrub(text: string, secrets: readonly string[]): string {
  let t = text;
  for (const s of secrets) t = t.split(s).join('***');
  return t;
}

/** A step with the secrets taken out, for one told as it happens (before the whole report is scrubbed). */
export function scrubStep(s: DoctorStep, secrets: readonly string[]): DoctorStep {
  if (secrets.length === 0) return s;
  return {
    ...s,
    detail: scrub(s.detail, secrets),
    ...(s.more ? { more: s.more.map((l) => scrub(l, secrets)) } : {}),
  };
}

export function scrubReport(r: DoctorReport, secrets: readonly string[]): DoctorReport {
  if (secrets.length === 0) return r;
  const step = (s: DoctorStep): DoctorStep => scrubStep(s, secrets);
  return {
    ...r,
    summary: scrub(r.summary, secrets),
    steps: r.steps.map(step),
    advice: r.advice.map((a) => scrub(a, secrets)),
  };
}
