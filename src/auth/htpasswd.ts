/**
 * Apache htpasswd files, as `htpasswd` writes them: bcrypt (`$2y$`, `$2a$`, `$2b$`), apr1 MD5 (`$apr1$`) and
 * SHA-1 (`{SHA}`). DES crypt and plain text are refused when the file is loaded, with the line named, rather
 * than failing every login later.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { WsviaError } from '../errors.js';
import { BcryptPool } from './bcrypt-pool.js';

type Entry =
  | { kind: 'bcrypt'; hash: string }
  | { kind: 'apr1'; salt: string; hash: string }
  | { kind: 'sha1'; hash: string };

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function to64(value: number, n: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < n; i++) {
    out += ITOA64[v & 0x3f];
    v >>>= 6;
  }
  return out;
}

/** The apr1 variant of MD5-crypt (Apache's `htpasswd -m`), returning the full `$apr1$salt$hash` string. */
export function apr1(password: string, salt: string): string {
  const pw = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 8), 'utf8');
  const magic = Buffer.from('$apr1$');
  const md5 = (...parts: Buffer[]): Buffer => {
    const h = createHash('md5');
    for (const p of parts) h.update(p);
    return h.digest();
  };
  let final = md5(pw, s, pw);
  const ctx = createHash('md5').update(pw).update(magic).update(s);
  for (let pl = pw.length; pl > 0; pl -= 16) ctx.update(final.subarray(0, Math.min(pl, 16)));
  for (let i = pw.length; i > 0; i >>= 1) ctx.update(i & 1 ? Buffer.from([0]) : pw.subarray(0, 1));
  final = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const parts: Buffer[] = [i & 1 ? pw : final];
    if (i % 3) parts.push(s);
    if (i % 7) parts.push(pw);
    parts.push(i & 1 ? final : pw);
    final = md5(...parts);
  }
  const f = (i: number): number => final[i] as number;
  const hash =
    to64((f(0) << 16) | (f(6) << 8) | f(12), 4) +
    to64((f(1) << 16) | (f(7) << 8) | f(13), 4) +
    to64((f(2) << 16) | (f(8) << 8) | f(14), 4) +
    to64((f(3) << 16) | (f(9) << 8) | f(15), 4) +
    to64((f(4) << 16) | (f(10) << 8) | f(5), 4) +
    to64(f(11), 2);
  return `$apr1$${s.toString('utf8')}$${hash}`;
}

function equalStrings(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** bcrypt's own base64 alphabet, for a dummy hash that costs what a real one does. */
const BCRYPT64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function dummyBcrypt(cost: number): string {
  const chars = [...randomBytes(53)].map((b) => BCRYPT64[b & 0x3f] as string).join('');
  return `$2b$${String(cost).padStart(2, '0')}$${chars}`;
}

export interface HtpasswdOptions {
  /** Runs one bcrypt comparison; by default a pool of worker threads, so checks stay off the event loop. */
  readonly bcryptCompare?: (password: string, hash: string) => Promise<boolean>;
}

export class Htpasswd {
  readonly #users: Map<string, Entry>;
  readonly #compare: (password: string, hash: string) => Promise<boolean>;
  /**
   * What an unknown user's password is checked against: a bcrypt hash of the highest cost in the file (when it
   * holds any), so that an unknown user costs what a known user with a wrong password costs.
   */
  readonly #dummy: string | undefined;

  private constructor(users: Map<string, Entry>, options: HtpasswdOptions) {
    this.#users = users;
    let pool: BcryptPool | undefined;
    this.#compare =
      options.bcryptCompare ?? ((password, hash) => (pool ??= new BcryptPool()).compare(password, hash));
    const costs = [...users.values()].flatMap((e) =>
      e.kind === 'bcrypt' ? [Number(e.hash.slice(4, 6))] : [],
    );
    this.#dummy = costs.length > 0 ? dummyBcrypt(Math.max(...costs)) : undefined;
  }

  get size(): number {
    return this.#users.size;
  }

  /** Parses a file's text; `source` names it in errors. */
  static parse(text: string, source = 'htpasswd file', options: HtpasswdOptions = {}): Htpasswd {
    const users = new Map<string, Entry>();
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const fail = (why: string): never => {
        throw new WsviaError('CONFIG_INVALID', `${source} line ${i + 1}: ${why}`, {
          hop: 'config',
          hint: 'write entries with htpasswd -B (bcrypt), -m (apr1) or -s (SHA-1)',
        });
      };
      if (colon <= 0) fail('expected user:hash');
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      let entry: Entry;
      if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash))
        entry = { kind: 'bcrypt', hash: hash.replace(/^\$2y\$/, '$2b$') };
      else if (hash.startsWith('$apr1$')) {
        const [, , salt, h] = hash.split('$');
        if (!salt || !h) fail('malformed apr1 entry');
        entry = { kind: 'apr1', salt: salt as string, hash };
      } else if (hash.startsWith('{SHA}')) entry = { kind: 'sha1', hash: hash.slice(5) };
      else entry = fail(`user ${JSON.stringify(user)}: unsupported hash (crypt or plain text)`);
      users.set(user, entry);
    });
    return new Htpasswd(users, options);
  }

  /** Checks a password. Unknown users cost a comparable time, so they cannot be told from wrong passwords. */
  async verify(user: string, password: string): Promise<boolean> {
    const e = this.#users.get(user);
    if (!e) {
      if (this.#dummy !== undefined) await this.#compare(password, this.#dummy);
      else apr1(password, 'xxxxxxxx');
      return false;
    }
    switch (e.kind) {
      case 'bcrypt':
        return this.#compare(password, e.hash);
      case 'apr1':
        return equalStrings(apr1(password, e.salt), e.hash);
      case 'sha1':
        return equalStrings(createHash('sha1').update(password, 'utf8').digest('base64'), e.hash);
    }
  }
}
