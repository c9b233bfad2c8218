/**
 * The session checker of the fault tests and the soak: send seeded random bytes, half-close (or close 1000 on a
 * WebSocket), read to the end, compare. Every session ends one of three ways, counted apart:
 * - exact: every byte back, in order, then a clean end;
 * - failed: an error the application sees (a reset, an error, a close code other than 1000, a refusal, a timeout);
 * - silent: a clean end with wrong or missing bytes. A tunnel must never produce it (STYLE.md trap 18).
 */
import net from 'node:net';
import WebSocket from 'ws';
import { ResponseHeadReader } from '../../src/protocol/head.js';
import { endWasReset } from '../../src/serve/reset.js';
import { prng } from '../helpers/fault-relay.js';

export type Outcome =
  | { readonly kind: 'exact'; readonly bytes: number }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'silent'; readonly detail: string };

/** `n` bytes from a seed: the same bytes for the same seed. */
export function seededBytes(seed: number, n: number): Buffer {
  const random = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(random() * 4294967296), i);
  return n % 4 === 0 ? b : b.subarray(0, n);
}

/** Where the first difference between what was sent and what came back is, for a silent loss's report. */
function difference(sent: Buffer, got: Buffer): string {
  let i = 0;
  while (i < sent.length && i < got.length && sent[i] === got[i]) i++;
  return `${got.length} of ${sent.length} bytes back, first difference at byte ${i}`;
}

/** Counts outcomes by kind, failures by reason; keeps the silent losses' details. */
export class Tally {
  exact = 0;
  bytes = 0;
  readonly failures = new Map<string, number>();
  readonly silent: string[] = [];

  add(o: Outcome, label: string): void {
    if (o.kind === 'exact') {
      this.exact++;
      this.bytes += o.bytes;
    } else if (o.kind === 'failed') this.failures.set(o.reason, (this.failures.get(o.reason) ?? 0) + 1);
    else this.silent.push(`${label}: ${o.detail}`);
  }

  get failed(): number {
    let n = 0;
    for (const v of this.failures.values()) n += v;
    return n;
  }

  get sessions(): number {
    return this.exact + this.failed + this.silent.length;
  }

  summary(): string {
    const f = [...this.failures].map(([k, v]) => `${k}: ${v}`).join(', ');
    return `${this.sessions} sessions: ${this.exact} exact, ${this.failed} failed (${f || 'none'}), ${this.silent.length} silent${this.silent.length ? `\n  ${this.silent.join('\n  ')}` : ''}`;
  }
}

/** The short name of an error for the failure counts. */
export function reasonOf(e: unknown): string {
  const x = e as { code?: unknown; message?: unknown };
  if (typeof x.code === 'string') return x.code;
  return typeof x.message === 'string' ? x.message.slice(0, 60) : 'error';
}

/** A socket ready for the session's bytes, and what already arrived after a proxy's answer. */
export interface OpenedStream {
  readonly socket: net.Socket;
  readonly leftover?: Buffer;
}

/**
 * Writes `data` on a connected socket, half-closes, reads until the end. A failure to open counts as failed; so
 * does no end within `deadlineMs` (the socket is then destroyed).
 */
export async function tcpSession(
  open: () => Promise<OpenedStream>,
  data: Buffer,
  deadlineMs: number,
): Promise<Outcome> {
  let opened: OpenedStream;
  const t0 = Date.now();
  try {
    opened = await open();
  } catch (e) {
    return { kind: 'failed', reason: `open: ${reasonOf(e)}` };
  }
  const { socket } = opened;
  return new Promise<Outcome>((resolve) => {
    const parts: Buffer[] = opened.leftover ? [opened.leftover] : [];
    const timer = setTimeout(
      () => {
        socket.destroy();
        resolve({ kind: 'failed', reason: 'timeout' });
      },
      Math.max(1, deadlineMs - (Date.now() - t0)),
    );
    socket.on('data', (c: Buffer) => parts.push(c));
    socket.once('error', (e) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ kind: 'failed', reason: reasonOf(e) });
    });
    socket.once('end', () => {
      clearTimeout(timer);
      // On Node 20 and 22 the last bytes and an RST in one read look like an end: ask the descriptor.
      if (endWasReset(socket)) {
        socket.destroy();
        return resolve({ kind: 'failed', reason: 'ECONNRESET' });
      }
      const got = Buffer.concat(parts);
      socket.destroy();
      resolve(
        got.equals(data)
          ? { kind: 'exact', bytes: got.length }
          : { kind: 'silent', detail: difference(data, got) },
      );
    });
    socket.end(data);
    socket.resume();
  });
}

/** Opens a TCP connection to 127.0.0.1:`port` that keeps its writing side after a FIN arrives. */
export function dialTcp(port: number): Promise<OpenedStream> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({ socket });
    });
  });
}

/** Opens a CONNECT tunnel to `target` through the proxy at 127.0.0.1:`proxyPort`; a non-2xx answer rejects. */
export function dialConnect(proxyPort: number, target: string): Promise<OpenedStream> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: proxyPort, allowHalfOpen: true });
    const reader = new ResponseHeadReader({ peer: 'proxy', hop: 'proxy' });
    const fail = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer): void => {
      let r;
      try {
        r = reader.receive(chunk);
      } catch (e) {
        return fail(e as Error);
      }
      if (!r) return;
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('end', early);
      socket.pause();
      if (r.head.status < 200 || r.head.status > 299)
        return fail(
          Object.assign(new Error(`proxy answered ${r.head.status}`), { code: `HTTP_${r.head.status}` }),
        );
      resolve({ socket, leftover: Buffer.from(r.leftover) });
    };
    const early = (): void =>
      fail(Object.assign(new Error('closed before an answer'), { code: 'EARLY_END' }));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('end', early);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/**
 * Sends `data` over an open WebSocket in binary messages of `messageBytes`, then closes with 1000, and collects the
 * echoes until the close. A close with 1000 (or no code) is a clean end; any other code, or none within
 * `deadlineMs`, is a failure.
 */
export function wsSession(
  ws: WebSocket,
  data: Buffer,
  messageBytes: number,
  deadlineMs: number,
): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const parts: Buffer[] = [];
    let error = '';
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ kind: 'failed', reason: 'timeout' });
    }, deadlineMs);
    ws.on('error', (e) => (error ||= reasonOf(e)));
    ws.on('message', (m: Buffer) => parts.push(m));
    ws.once('close', (code: number) => {
      clearTimeout(timer);
      const got = Buffer.concat(parts);
      if (code !== 1000 && code !== 1005)
        return resolve({ kind: 'failed', reason: `close ${code}${error ? ` ${error}` : ''}` });
      resolve(
        got.equals(data)
          ? { kind: 'exact', bytes: got.length }
          : { kind: 'silent', detail: `close ${code}: ${difference(data, got)}` },
      );
    });
    for (let i = 0; i < data.length; i += messageBytes) ws.send(data.subarray(i, i + messageBytes));
    ws.close(1000);
  });
}

/** Runs `count` sessions, at most `parallel` at once; `one(i)` runs session `i`. */
export async function runSessions(
  count: number,
  parallel: number,
  one: (i: number) => Promise<Outcome>,
  tally: Tally,
  label: string,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      tally.add(await one(i), `${label} #${i}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}
