/**
 * Starts one of wsvia's worker threads (the PAC sandbox, the bcrypt pool). From an npm install the worker is its
 * compiled file beside the caller; inside the single executable there are no files, so scripts/build-sea.mjs
 * bundles each worker on its own and stores it as an asset of the same name, run here as the worker's source.
 */
import { getAsset, isSea } from 'node:sea';
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function startWorker(name: string, beside: () => URL, options: WorkerOptions = {}): Worker {
  if (isSea()) return new Worker(getAsset(name, 'utf8'), { ...options, eval: true });
  // The URL is made only here: in the single executable's bundle `import.meta.url` does not exist.
  return new Worker(beside(), options);
}
