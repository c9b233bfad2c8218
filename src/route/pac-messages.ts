/** What the main thread and a PAC worker thread (route/pac-worker.ts) tell each other. */
export interface PacWorkerData {
  readonly script: string;
  readonly source: string;
  readonly memoryLimit: number;
  /** [0]: 0 while a host answer is awaited, 1 once written; [1]: its length in bytes; then the JSON bytes. */
  readonly answer: SharedArrayBuffer;
}

export type ToPacWorker = { readonly id: number; readonly url: string; readonly host: string };

export type FromPacWorker =
  | { readonly type: 'started' }
  | { readonly type: 'loaded' }
  | { readonly type: 'result'; readonly id: number; readonly value: unknown }
  | { readonly type: 'error'; readonly id?: number; readonly name: string; readonly message: string }
  | { readonly type: 'host'; readonly fn: 'dnsResolve' | 'myIpAddress'; readonly arg: string }
  | { readonly type: 'alert'; readonly message: string };

/** Bytes after the two Int32 slots of the answer buffer. */
export const ANSWER_HEADER = 8;
