/**
 * What intermediaries did to the upgrade request: the headers the client sent, compared with those the server
 * reports it received (`wsvia echo --mirror`). Values of secret headers are redacted on both sides first, so a
 * diff can never print one.
 */
import type { HeaderList } from '../protocol/headers.js';
import { redactHeaderValue } from '../observe/redact.js';

export interface HeaderDiff {
  /** Sent, not received. */
  readonly removed: readonly string[];
  /** Received, not sent: `Name: value`. */
  readonly added: readonly string[];
  /** Sent and received with another value: `Name: sent -> received`. */
  readonly changed: readonly string[];
}

function byName(headers: HeaderList): Map<string, { name: string; value: string }> {
  const m = new Map<string, { name: string; value: string }>();
  for (const [k, v] of headers) {
    const key = k.toLowerCase();
    const value = redactHeaderValue(k, v);
    const prev = m.get(key);
    // RFC 9110 §5.3: repeated fields combine into one comma-separated list.
    m.set(key, prev ? { name: prev.name, value: `${prev.value}, ${value}` } : { name: k, value });
  }
  return m;
}

export function diffHeaders(sent: HeaderList, received: HeaderList): HeaderDiff {
  const s = byName(sent);
  const r = byName(received);
  const removed: string[] = [];
  const added: string[] = [];
  const changed: string[] = [];
  for (const [key, { name, value }] of s) {
    const got = r.get(key);
    if (!got) removed.push(name);
    else if (got.value.toLowerCase() !== value.toLowerCase())
      changed.push(`${name}: ${value} -> ${got.value}`);
  }
  for (const [key, { name, value }] of r) if (!s.has(key)) added.push(`${name}: ${value}`);
  return { removed, added, changed };
}

export function isEmptyDiff(d: HeaderDiff): boolean {
  return d.removed.length === 0 && d.added.length === 0 && d.changed.length === 0;
}
