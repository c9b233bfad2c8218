/**
 * Byte helpers for the sans-I/O tests: every incremental parser is fed whole, byte by byte, and split at every
 * point (STYLE 16, h11's `tr()`).
 */
import { isWsviaError } from '../../src/errors.js';

export function bytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

export function text(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** The input cut into the given pieces: `[0, a), [a, b), ...`. */
export function splitAt(input: Uint8Array, points: readonly number[]): Uint8Array[] {
  const sorted = [...new Set(points)].filter((p) => p > 0 && p < input.length).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of sorted) {
    out.push(input.subarray(last, p));
    last = p;
  }
  out.push(input.subarray(last));
  return out;
}

export function byteByByte(input: Uint8Array): Uint8Array[] {
  return Array.from(input, (_, i) => input.subarray(i, i + 1));
}

/** Runs `fn` and returns the WsviaError it throws; fails if it throws anything else or nothing. */
export function catchWsvia(fn: () => unknown): import('../../src/errors.js').WsviaError {
  try {
    fn();
  } catch (e) {
    if (isWsviaError(e)) return e;
    throw new Error(`expected a WsviaError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a WsviaError, nothing was thrown');
}
