/**
 * Process-wide watchers of admitted connections: the heap policies of the servers (serve/after-burst-gc.ts,
 * serve/young-generation.ts). serve/admission.ts tells them of every admitted connection and of its end.
 */
export interface ConnectionWatcher {
  opened(): void;
  closed(): void;
  stop(): void;
}

const watchers = new Map<string, ConnectionWatcher>();

/** Installs `w` under `name`; one installed before under that name is stopped and replaced. */
export function watchConnections<W extends ConnectionWatcher>(name: string, w: W): W {
  watchers.get(name)?.stop();
  watchers.set(name, w);
  return w;
}

/** A connection was admitted. */
export function noteConnectionOpened(): void {
  for (const w of watchers.values()) w.opened();
}

/** An admitted connection ended. */
export function noteConnectionClosed(): void {
  for (const w of watchers.values()) w.closed();
}
