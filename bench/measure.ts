/**
 * Running load jobs in child processes and reading the peer's cost from /proc around them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IdleResult, Job } from './jobs.js';
import { cpuSeconds, rssKiB } from './procfs.js';

const LOAD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'load.js');

/** Runs one job to its end in a fresh load-generator process; rejects after `timeoutMs` (the child is killed). */
export function runJob<T>(job: Job, timeoutMs = 180_000): Promise<T> {
  const child = spawn(process.execPath, [LOAD, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0)
        return reject(new Error(`load ${job.kind} failed (${code ?? signal}): ${err.slice(0, 2000)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      } catch {
        reject(new Error(`load ${job.kind}: unreadable answer ${out.slice(0, 200)}`));
      }
    });
  });
}

/** Runs `job` and returns its result with the CPU seconds the process tree `pid` used meanwhile. */
export async function withCpu<T>(pid: number, job: Job): Promise<{ result: T; cpu: number }> {
  const before = cpuSeconds(pid);
  const result = await runJob<T>(job);
  return { result, cpu: cpuSeconds(pid) - before };
}

export interface HeldConnections {
  readonly result: IdleResult;
  release(): Promise<void>;
}

/** Starts an idle job and resolves once its connections are open; `release` closes them and waits for the exit. */
export function holdIdle(job: Job, timeoutMs = 180_000): Promise<HeldConnections> {
  const child: ChildProcess = spawn(process.execPath, [LOAD, JSON.stringify(job)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const release = async (): Promise<void> => {
    child.stdin?.end();
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`idle ${job.kind}: not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      resolve({ result: JSON.parse(out.split('\n')[0] ?? '') as IdleResult, release });
    });
    exited.then(
      () => {
        clearTimeout(timer);
        reject(new Error(`idle ${job.kind} exited early: ${err.slice(0, 2000)}`));
      },
      (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))),
    );
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Median of three RSS samples a quarter second apart (a single read can land mid-GC). */
export async function settledRssKiB(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    samples.push(rssKiB(pid));
    await sleep(250);
  }
  return median(samples);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}
