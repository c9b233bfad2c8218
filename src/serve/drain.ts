/**
 * The end of a drain. A session cut by the drain timeout (its sockets destroyed) writes its access-log line only
 * when its sockets' `close` events have run, a turn or two of the event loop later; a server that closed its log
 * right after cutting would lose exactly those lines. Every session ends in one line, so a server waits here first.
 */

/**
 * Resolves once `open()` is 0, or after `turns` turns of the event loop and then up to `graceMs` more (a session that
 * never closes). The grace is for sessions a native relay thread has to hand back first: that comes through the
 * thread, not within a number of turns.
 */
export async function sessionsSettled(open: () => number, turns = 100, graceMs = 2000): Promise<void> {
  for (let i = 0; open() > 0 && i < turns; i++) await new Promise((r) => setImmediate(r));
  const deadline = Date.now() + graceMs;
  while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}
