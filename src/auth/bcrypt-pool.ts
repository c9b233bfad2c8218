/**
 * A bounded pool of worker threads for bcrypt comparisons, so password checks never run on the event loop: a
 * flood of logins waits its turn in the queue while every other connection is served. Workers start on first use
 * and do not keep the process alive while idle.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-script.js';

interface Pending {
  readonly id: number;
  readonly password: string;
  readonly hash: string;
  readonly resolve: (ok: boolean) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  job: Pending | undefined;
}

export class BcryptPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 0;
  #checks = 0;

  constructor(options: { size?: number } = {}) {
    this.#size = Math.max(1, options.size ?? Math.min(2, availableParallelism()));
  }

  /** Comparisons run so far (for tests and metrics). */
  get checks(): number {
    return this.#checks;
  }

  compare(password: string, hash: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, password, hash, resolve, reject });
      this.#dispatch();
    });
  }

  /** Stops the workers; queued comparisons are refused. */
  async close(): Promise<void> {
    for (const p of this.#queue.splice(0)) p.reject(new Error('password check pool closed'));
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }

  #dispatch(): void {
    for (;;) {
      const next = this.#queue[0];
      if (!next) return;
      const slot = this.#slots.find((s) => s.job === undefined) ?? this.#spawn();
      if (!slot) return;
      this.#queue.shift();
      slot.job = next;
      this.#checks++;
      slot.worker.ref();
      slot.worker.postMessage({ id: next.id, password: next.password, hash: next.hash });
    }
  }

  #spawn(): Slot | undefined {
    if (this.#slots.length >= this.#size) return undefined;
    const worker = startWorker('bcrypt-worker.js', () => new URL('./bcrypt-worker.js', import.meta.url));
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (m: { id: number; ok: boolean }) => {
      const job = slot.job;
      if (job?.id !== m.id) return;
      slot.job = undefined;
      worker.unref();
      job.resolve(m.ok);
      this.#dispatch();
    });
    const lost = (e: Error): void => {
      const i = this.#slots.indexOf(slot);
      if (i < 0) return;
      this.#slots.splice(i, 1);
      slot.job?.reject(e);
      slot.job = undefined;
      this.#dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`password check worker exited (${code})`)));
    worker.unref();
    this.#slots.push(slot);
    return slot;
  }
}
