/**
 * Reads a `--record` session file (recorder.ts) back: `wsvia bridge --replay FILE` prints each chunk with its time,
 * direction and bytes (printable text as is, the rest as hex), so a session can be read like a transcript.
 */
import { WsviaError } from '../errors.js';

export interface RecordedChunk {
  readonly t: number;
  readonly dir: 'up' | 'down';
  readonly data: Buffer;
}

/** The data chunks of a recording, in order. Throws CONFIG_INVALID naming the first bad line. */
export function parseRecording(text: string): {
  header: Record<string, unknown>;
  chunks: RecordedChunk[];
  end?: Record<string, unknown>;
} {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const bad = (i: number, why: string): never => {
    throw new WsviaError('CONFIG_INVALID', `recording line ${i + 1}: ${why}`, {
      hop: 'config',
      hint: 'expected a file written by wsvia bridge --record',
    });
  };
  const parsed = lines.map((l, i) => {
    try {
      const v = JSON.parse(l) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad(i, 'not a JSON object');
      return v as Record<string, unknown>;
    } catch {
      return bad(i, 'not JSON');
    }
  });
  const header = parsed[0];
  if (!header || header['type'] !== 'session') return bad(0, 'the first line is not a session header');
  const chunks: RecordedChunk[] = [];
  let end: Record<string, unknown> | undefined;
  parsed.slice(1).forEach((o, i) => {
    if (o['type'] === 'data') {
      const dir = o['dir'];
      if ((dir !== 'up' && dir !== 'down') || typeof o['t'] !== 'number' || typeof o['data'] !== 'string')
        bad(i + 1, 'bad data record');
      chunks.push({
        t: o['t'] as number,
        dir: dir as 'up' | 'down',
        data: Buffer.from(o['data'] as string, 'base64'),
      });
    } else if (o['type'] === 'end') end = o;
  });
  return end ? { header, chunks, end } : { header, chunks };
}

function show(b: Buffer): string {
  const text = b.toString('latin1');
  return /^[\x20-\x7e\r\n\t]*$/.test(text) ? JSON.stringify(text) : `hex ${b.toString('hex')}`;
}

export function formatRecording(text: string): string {
  const r = parseRecording(text);
  const out = [
    `session ${String(r.header['start'])} client ${String(r.header['client'])} -> ${String(r.header['target'])}`,
  ];
  for (const c of r.chunks)
    out.push(
      `${c.t.toFixed(1).padStart(10)} ms ${c.dir === 'up' ? 'client -> target' : 'target -> client'} ${c.data.length} bytes ${show(c.data)}`,
    );
  if (r.end) out.push(`end after ${String(r.end['t'])} ms, closed by ${String(r.end['closed_by'])}`);
  return `${out.join('\n')}\n`;
}
