/** Header fields in wire order, names as sent. Lookups are case-insensitive (RFC 9110 §5.1). */
export type HeaderList = readonly (readonly [string, string])[];

/**
 * `k` names the field `lower` (already lowercase). The length is compared first: a server looks a few fields up
 * in every head, and most names differ in length (the names looked up are ASCII: no name of another length lowercases to one).
 */
function names(k: string, lower: string): boolean {
  return k.length === lower.length && k.toLowerCase() === lower;
}

export function getHeader(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of headers) if (names(k, lower)) return v;
  return undefined;
}

/** Every value of a field, in order (for fields that may repeat, such as Proxy-Authenticate or Via). */
export function getHeaderValues(headers: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [k, v] of headers) if (names(k, lower)) out.push(v);
  return out;
}

/** Comma-separated list members of every instance of a field, lowercased (Connection, Upgrade, Transfer-Encoding). */
export function headerTokens(headers: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [k, v] of headers) {
    if (!names(k, lower)) continue;
    for (const t of v.split(',')) {
      const token = t.trim().toLowerCase();
      if (token.length > 0) out.push(token);
    }
  }
  return out;
}

export function hasToken(headers: HeaderList, name: string, token: string): boolean {
  return headerTokens(headers, name).includes(token.toLowerCase());
}

/** RFC 9110 §5.6.2 token characters, by character code (0-127). */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;

/** Whether the character code `c` is a token character (RFC 9110 §5.6.2). */
export function isTokenChar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

/** Whether `s` is a token: one or more token characters (a method, a field name). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

/**
 * RFC 9110 §5.5: a field value is visible characters, obs-text, SP and HTAB. CR, LF and NUL must be rejected;
 * other controls are invalid too, and are refused here rather than retained (as h11 does): values end up in
 * error messages and traces, where an ESC would drive the user's terminal.
 */
export function isValidFieldValue(s: string): boolean {
  return !/[\0-\x08\x0a-\x1f\x7f]/.test(s);
}

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1) plus the non-standard Proxy-Connection that old clients send, lowercased:
 * an intermediary never forwards them (nor any field the Connection header names).
 */
export const HOP_BY_HOP_FIELDS = [
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
] as const;

/**
 * A token or quoted-string value (RFC 9110 §5.6.4), trimmed, with the quotes removed and backslash escapes
 * undone; anything else is returned trimmed as it is.
 */
export function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  return t;
}

/** Splits on `sep` outside quoted-strings (RFC 9110 §5.6.4), keeping backslash escapes as they are. */
export function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quoted && c === '\\' && i + 1 < s.length) {
      cur += c + (s[i + 1] as string);
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}
