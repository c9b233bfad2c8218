/**
 * This process's open file descriptors, from /proc/self/fd: all of them, or only those of one kind (`socket`,
 * `pipe`). A test takes a count before and waits for it after, to prove that every path closed what it opened.
 */
import fs from 'node:fs';

export function openFds(kind?: 'socket' | 'pipe'): number {
  const fds = fs.readdirSync('/proc/self/fd');
  if (kind === undefined) return fds.length;
  return fds.filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${kind}:`);
    } catch {
      return false; // closed while listed
    }
  }).length;
}
