/**
 * Reading a server's cost from outside, as an operator would: CPU time and resident memory of a process and all
 * its descendants, from /proc (proc(5)). Nothing here runs inside the measured process.
 */
import fs from 'node:fs';

/** Clock ticks per second for the utime/stime fields of /proc/PID/stat (`getconf CLK_TCK`, 100 on Linux). */
export const CLOCK_TICKS_PER_SECOND = 100;

interface StatFields {
  readonly ppid: number;
  /** utime + stime + cutime + cstime: the process, its threads, and its children that have been waited for. */
  readonly ticks: number;
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // gone between the directory listing and the read
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const num = (field: number): number => Number(rest[field - 3] ?? 0);
  return { ppid: num(4), ticks: num(14) + num(15) + num(16) + num(17) };
}

/** `pid` and every live descendant (forked workers, per-connection children). */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) parentOf.set(Number(name), s.ppid);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** CPU seconds used so far by `pid` and its descendants (live ones, and exited ones they have reaped). */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) ticks += readStat(p)?.ticks ?? 0;
  return ticks / CLOCK_TICKS_PER_SECOND;
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      fs.readFileSync(`/proc/${pid}/status`, 'latin1'),
    );
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Sum of VmRSS (KiB) over `pid` and its descendants. Shared pages of forked children count once per process. */
export function rssKiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) kib += statusField(p, 'VmRSS');
  return kib;
}

/** Proportional set size (KiB) over the tree, from smaps_rollup: shared pages split between their sharers. */
export function pssKiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p}/smaps_rollup`, 'latin1'));
      if (m) kib += Number(m[1]);
    } catch {
      // process exited
    }
  }
  return kib;
}

/** How many processes make up the server now (1 for an event loop, 1 + N for a fork per connection). */
export function processCount(pid: number): number {
  return processTree(pid).length;
}

/** The open-file limit this process runs with (children inherit it). */
export function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'latin1'));
  return m ? Number(m[1]) : 1024;
}
