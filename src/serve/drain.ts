/**
 * The end of a drain. A session cut by the drain timeout (its sockets destroyed) writes its access-log line only
 * when its sockets' `close` events have run, a turn or two of the event loop later; a server that closed its log
 * right after cutting would lose exactly those lines. Every session ends in one line, so a server waits here first.
 */

/** Resolves once `open()` is 0, or after `turns` turns of the event loop (a session that never closes). */
export async function sessionsSettled(open: () => number, turns = 100): Promise<void> {
  for (let i = 0; open() > 0 && i < turns; i++) await new Promise((r) => setImmediate(r));
}
