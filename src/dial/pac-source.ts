/**
 * Loading a PAC file from a path, a `file:` URL or an `http(s):` URL, and keeping it: a fetched file is cached as
 * its `Cache-Control` (max-age, no-store, no-cache) or `Expires` say (RFC 9111 §4.2.1), a local file is re-read
 * and recompiled only when its text changed. The file is fetched directly, never through a proxy (as browsers do).
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { WsviaError } from '../errors.js';
import type { PacHost, PacScript } from '../route/pac.js';

export interface PacLoadOptions {
  /** Limit for fetching the file, in ms (default 10 s). */
  readonly timeoutMs?: number;
  /** Time budget of each evaluation, in ms (default 1 s). */
  readonly evalTimeoutMs?: number;
  readonly host?: PacHost;
  readonly now?: () => number;
}

/** Largest PAC file accepted (real ones are a few kilobytes; some corporate ones a few hundred). */
export const MAX_PAC_BYTES = 1024 * 1024;

interface Cached {
  readonly text: string;
  readonly script: PacScript;
  /** Epoch ms after which a fetched file must be fetched again; Infinity for a local file (compared by text). */
  readonly freshUntil: number;
}

/** Sources kept compiled (each holds a WebAssembly instance); the least recently loaded goes first. */
const MAX_CACHED = 16;
const cache = new Map<string, Cached>();

function remember(source: string, entry: Cached): void {
  cache.delete(source);
  cache.set(source, entry);
  while (cache.size > MAX_CACHED) {
    const [oldest, old] = cache.entries().next().value as [string, Cached];
    cache.delete(oldest);
    old.script.dispose();
  }
}

/** Seconds of freshness from the response's headers (RFC 9111 §4.2.1), 0 when it may not be reused. */
export function freshnessSeconds(headers: http.IncomingHttpHeaders, nowMs: number): number {
  const cc = String(headers['cache-control'] ?? '').toLowerCase();
  if (/(^|,)\s*(no-store|no-cache)\b/.test(cc)) return 0;
  const maxAge = /(^|,)\s*max-age\s*=\s*"?(\d+)"?/.exec(cc);
  if (maxAge) return Number(maxAge[2]);
  const expires = headers.expires === undefined ? NaN : Date.parse(headers.expires);
  if (!Number.isNaN(expires)) {
    const date = headers.date === undefined ? NaN : Date.parse(headers.date);
    return Math.max(0, Math.floor((expires - (Number.isNaN(date) ? nowMs : date)) / 1000));
  }
  return 0;
}

function fetchError(source: string, why: string, cause?: unknown): WsviaError {
  return new WsviaError('CONFIG_INVALID', `cannot fetch the PAC file ${source}: ${why}`, {
    hop: 'route',
    hint: 'check the --pac URL; the PAC file is fetched directly, not through a proxy',
    ...(cause === undefined ? {} : { cause }),
  });
}

function fetchText(
  url: URL,
  timeoutMs: number,
): Promise<{ text: string; headers: http.IncomingHttpHeaders }> {
  const source = url.toString();
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? https.get : http.get;
    const req = get(
      url,
      { timeout: timeoutMs, headers: { accept: 'application/x-ns-proxy-autoconfig, */*' } },
      (res) => {
        if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
          res.resume();
          return reject(
            fetchError(
              source,
              `the server answered ${res.statusCode ?? '?'} ${res.statusMessage ?? ''}`.trim(),
            ),
          );
        }
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_PAC_BYTES) {
            req.destroy();
            return reject(fetchError(source, `it is larger than ${MAX_PAC_BYTES} bytes`));
          }
          parts.push(c);
        });
        res.once('end', () => resolve({ text: Buffer.concat(parts).toString('utf8'), headers: res.headers }));
        res.once('error', (e) => reject(fetchError(source, e.message, e)));
      },
    );
    req.once('timeout', () => {
      req.destroy();
      reject(fetchError(source, `no answer within ${timeoutMs} ms`));
    });
    req.once('error', (e: NodeJS.ErrnoException) => reject(fetchError(source, e.code ?? e.message, e)));
  });
}

async function readLocal(path: string, source: string): Promise<string> {
  try {
    const stat = await fs.stat(path);
    if (stat.size > MAX_PAC_BYTES) throw fetchError(source, `it is larger than ${MAX_PAC_BYTES} bytes`);
    return await fs.readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof WsviaError) throw e;
    throw new WsviaError(
      'CONFIG_INVALID',
      `cannot read the PAC file ${source}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      {
        hop: 'route',
        hint: 'check the --pac path',
        cause: e,
      },
    );
  }
}

/**
 * The compiled PAC file at `source` (a path, `file:`, `http:` or `https:` URL), from the cache while fresh.
 * The returned script is shared: do not dispose it.
 */
export function loadPac(source: string, options: PacLoadOptions = {}): Promise<PacScript> {
  // Dials that start together share one fetch and one compilation.
  const pending = inflight.get(source);
  if (pending) return pending;
  const p = load(source, options).finally(() => inflight.delete(source));
  inflight.set(source, p);
  return p;
}

const inflight = new Map<string, Promise<PacScript>>();

async function load(source: string, options: PacLoadOptions): Promise<PacScript> {
  const now = options.now ?? Date.now;
  const cached = cache.get(source);
  if (cached && cached.freshUntil > now()) return cached.script;
  let text: string;
  let freshUntil: number;
  if (/^https?:\/\//i.test(source)) {
    const r = await fetchText(new URL(source), options.timeoutMs ?? 10_000);
    text = r.text;
    freshUntil = now() + freshnessSeconds(r.headers, now()) * 1000;
  } else {
    const path = /^file:/i.test(source) ? fileURLToPath(source) : source;
    text = await readLocal(path, source);
    freshUntil = 0;
  }
  if (cached && cached.text === text) {
    remember(source, { ...cached, freshUntil });
    return cached.script;
  }
  // Loaded on first use: the PAC engine (QuickJS, a JavaScript parser) adds a few hundred ms to start-up.
  const { compilePac } = await import('../route/pac.js');
  const script = await compilePac(text, {
    source,
    ...(options.evalTimeoutMs === undefined ? {} : { timeoutMs: options.evalTimeoutMs }),
    ...(options.host === undefined ? {} : { host: options.host }),
  });
  cached?.script.dispose();
  remember(source, { text, script, freshUntil });
  return script;
}

/** Empties the PAC cache (tests, and long-running processes told the file changed). */
export function clearPacCache(): void {
  for (const c of cache.values()) c.script.dispose();
  cache.clear();
}
