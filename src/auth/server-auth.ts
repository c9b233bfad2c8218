/**
 * The server side of HTTP authentication, for wsvia's own proxy and bridge: the challenges to send and the
 * check of what comes back. Basic against any user store; Digest (RFC 7616, SHA-256 and MD5, qop=auth) only
 * where the plain password is known (`--auth user:pass`), since htpasswd hashes cannot compute it. A nonce is a
 * timestamp and its HMAC (so a forged one is told from an expired one), and the {@link NonceTable} remembers the
 * nonce counts seen, so a Digest response is good once: a replayed or lower `nc` gets a fresh challenge.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseChallenges } from './challenge.js';
import { NonceTable } from './nonce-table.js';

export interface UserStore {
  verify(user: string, password: string): Promise<boolean>;
  /** The plain password, when known: enables Digest. */
  password?(user: string): string | undefined;
}

/** Users given on the command line as `user:pass` (repeatable). */
export class StaticUsers implements UserStore {
  readonly #users: Map<string, string>;
  constructor(pairs: readonly string[]) {
    this.#users = new Map(
      pairs.map((p) => {
        const i = p.indexOf(':');
        return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
      }),
    );
  }
  verify(user: string, password: string): Promise<boolean> {
    const known = this.#users.get(user);
    const a = Buffer.from(known ?? '\0unknown');
    const b = Buffer.from(password);
    return Promise.resolve(known !== undefined && a.length === b.length && timingSafeEqual(a, b));
  }
  password(user: string): string | undefined {
    return this.#users.get(user);
  }
}

export type AuthCheck =
  | { readonly ok: true; readonly user: string; readonly scheme: 'basic' | 'digest' }
  | {
      readonly ok: false;
      readonly reason: 'missing' | 'malformed' | 'rejected' | 'stale' | 'replayed';
      readonly user?: string;
    };

export interface ServerAuthOptions {
  readonly realm: string;
  readonly users: UserStore;
  /** Offered schemes, strongest first in the challenge. Digest needs a store that knows passwords. */
  readonly schemes: readonly ('basic' | 'digest')[];
  /** How long a Digest nonce stays valid, ms (then the client is told `stale=true`). */
  readonly nonceLifetime?: number;
  /** How many Digest nonces are remembered at once (the oldest is forgotten first; its client is told stale). */
  readonly maxNonces?: number;
}

export class ServerAuth {
  readonly #o: ServerAuthOptions;
  readonly #secret = randomBytes(32);
  readonly #nonces: NonceTable;

  constructor(options: ServerAuthOptions) {
    this.#o = options;
    this.#nonces = new NonceTable({
      lifetimeMs: options.nonceLifetime ?? 300_000,
      maxEntries: options.maxNonces ?? 10_000,
    });
  }

  get schemes(): readonly ('basic' | 'digest')[] {
    return this.#o.schemes;
  }

  #nonce(): string {
    // The random part keeps two nonces issued in the same millisecond apart.
    const ts = `${Date.now().toString(36)}-${randomBytes(6).toString('base64url')}`;
    const nonce = `${ts}.${createHmac('sha256', this.#secret).update(ts).digest('base64url')}`;
    this.#nonces.issue(nonce);
    return nonce;
  }

  #nonceState(nonce: string): 'valid' | 'stale' | 'forged' {
    const [ts, mac] = nonce.split('.');
    if (!ts || !mac) return 'forged';
    const expect = createHmac('sha256', this.#secret).update(ts).digest('base64url');
    if (expect.length !== mac.length || !timingSafeEqual(Buffer.from(expect), Buffer.from(mac)))
      return 'forged';
    const issued = parseInt(ts.split('-')[0] ?? '', 36);
    return Date.now() - issued > (this.#o.nonceLifetime ?? 300_000) ? 'stale' : 'valid';
  }

  /** Values for `Proxy-Authenticate` (or `WWW-Authenticate`), one per scheme, strongest first. */
  challenges(stale = false): string[] {
    const realm = JSON.stringify(this.#o.realm);
    const out: string[] = [];
    if (this.#o.schemes.includes('digest')) {
      const s = stale ? ', stale=true' : '';
      out.push(`Digest realm=${realm}, qop="auth", algorithm=SHA-256, nonce="${this.#nonce()}"${s}`);
      out.push(`Digest realm=${realm}, qop="auth", algorithm=MD5, nonce="${this.#nonce()}"${s}`);
    }
    if (this.#o.schemes.includes('basic')) out.push(`Basic realm=${realm}, charset="UTF-8"`);
    return out;
  }

  /** Checks an Authorization / Proxy-Authorization value for this request. */
  async check(authorization: string | undefined, method: string, uri: string): Promise<AuthCheck> {
    if (authorization === undefined || authorization.trim() === '') return { ok: false, reason: 'missing' };
    const space = authorization.indexOf(' ');
    const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
    const rest = space < 0 ? '' : authorization.slice(space + 1).trim();
    if (scheme === 'basic' && this.#o.schemes.includes('basic')) {
      const decoded = Buffer.from(rest, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { ok: false, reason: 'malformed' };
      const user = decoded.slice(0, colon);
      return (await this.#o.users.verify(user, decoded.slice(colon + 1)))
        ? { ok: true, user, scheme: 'basic' }
        : { ok: false, reason: 'rejected', user };
    }
    if (scheme === 'digest' && this.#o.schemes.includes('digest'))
      return this.#checkDigest(authorization, method, uri);
    return { ok: false, reason: 'malformed' };
  }

  #checkDigest(value: string, method: string, uri: string): AuthCheck {
    const p = parseChallenges([value])[0]?.params;
    if (!p || !p.username || !p.nonce || !p.response || !p.uri) return { ok: false, reason: 'malformed' };
    const user = p.username;
    const password = this.#o.users.password?.(user);
    const state = this.#nonceState(p.nonce);
    if (state === 'forged') return { ok: false, reason: 'rejected', user };
    // The digest-uri must name this request's target (RFC 7616 §3.4.6).
    if (p.uri !== uri) return { ok: false, reason: 'rejected', user };
    if (password === undefined) return { ok: false, reason: 'rejected', user };
    const algo = (p.algorithm ?? 'MD5').toUpperCase();
    const hashName = algo === 'SHA-256' ? 'sha256' : algo === 'MD5' ? 'md5' : undefined;
    // qop=auth is required: without it (RFC 2069) there is no nonce count, so a response could be replayed.
    if (!hashName || p.qop !== 'auth' || !p.cnonce || !p.nc || !/^[0-9a-f]{8}$/i.test(p.nc))
      return { ok: false, reason: 'malformed', user };
    const H = (s: string): string => createHash(hashName).update(s, 'utf8').digest('hex');
    const ha1 = H(`${user}:${this.#o.realm}:${password}`);
    const ha2 = H(`${method}:${p.uri}`);
    const expected = H(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:auth:${ha2}`);
    const ok =
      expected.length === p.response.length &&
      timingSafeEqual(Buffer.from(expected), Buffer.from(p.response));
    if (!ok) return { ok: false, reason: 'rejected', user };
    const nc = parseInt(p.nc, 16);
    // RFC 7616 §3.3: stale=true only where the response was right but the nonce old (or forgotten).
    const use = state === 'stale' ? 'unknown' : this.#nonces.check(p.nonce, nc);
    if (use === 'unknown') return { ok: false, reason: 'stale', user };
    if (use === 'replayed') return { ok: false, reason: 'replayed', user };
    this.#nonces.accept(p.nonce, nc);
    return { ok: true, user, scheme: 'digest' };
  }
}
