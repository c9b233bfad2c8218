/**
 * `--record DIR`: every session's bytes with timestamps, one file per session, in JSON lines
 * (`docs/bridge.md` documents it; `wsvia bridge --replay FILE` prints it):
 *
 *   {"type":"session","version":1,"start":"2026-...Z","client":"127.0.0.1:5123","target":"127.0.0.1:22","path":"/"}
 *   {"type":"data","t":1.5,"dir":"up","data":"<base64>"}      up: client -> target; down: target -> client
 *   {"type":"gap","t":9.1,"dir":"down","bytes":65536}        bytes not recorded: the disk was slower than the traffic
 *   {"type":"end","t":812.4,"closed_by":"client","bytes_up":10,"bytes_down":20}
 *
 * `t` is milliseconds since the session started. Writes respect the file stream's backpressure: when the disk
 * falls behind, chunks are counted as a gap instead of buffered.
 */
import fs from 'node:fs';
import path from 'node:path';

let sequence = 0;

export class SessionRecorder {
  readonly #out: fs.WriteStream;
  readonly #start = performance.now();
  #blocked = false;
  #gap = { up: 0, down: 0 };
  readonly file: string;

  constructor(dir: string, header: { client: string; target: string; path: string }) {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    this.file = path.join(dir, `${stamp}-${process.pid}-${++sequence}.jsonl`);
    this.#out = fs.createWriteStream(this.file, { flags: 'wx', mode: 0o600 });
    this.#out.on('error', () => (this.#blocked = true));
    this.#out.on('drain', () => {
      this.#blocked = false;
      for (const dir of ['up', 'down'] as const) {
        if (this.#gap[dir] > 0) this.#line({ type: 'gap', t: this.#t(), dir, bytes: this.#gap[dir] });
        this.#gap[dir] = 0;
      }
    });
    this.#line({ type: 'session', version: 1, start: new Date().toISOString(), ...header });
  }

  #t(): number {
    return Math.round((performance.now() - this.#start) * 10) / 10;
  }

  #line(o: Record<string, unknown>): void {
    if (!this.#out.write(`${JSON.stringify(o)}\n`)) this.#blocked = true;
  }

  data(dir: 'up' | 'down', bytes: Buffer): void {
    if (this.#blocked) {
      this.#gap[dir] += bytes.length;
      return;
    }
    this.#line({ type: 'data', t: this.#t(), dir, data: bytes.toString('base64') });
  }

  end(summary: Record<string, unknown>): Promise<void> {
    for (const dir of ['up', 'down'] as const)
      if (this.#gap[dir] > 0)
        this.#out.write(`${JSON.stringify({ type: 'gap', t: this.#t(), dir, bytes: this.#gap[dir] })}\n`);
    this.#out.write(`${JSON.stringify({ type: 'end', t: this.#t(), ...summary })}\n`);
    return new Promise((resolve) => this.#out.end(resolve));
  }
}
