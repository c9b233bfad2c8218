/**
 * The body of a {@link BcryptPool} worker thread: one bcrypt comparison per message. A bcrypt check costs tens of
 * milliseconds of CPU at cost 10 (bcryptjs is JavaScript), which on the main thread would stall every connection.
 */
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

interface Job {
  readonly id: number;
  readonly password: string;
  readonly hash: string;
}

parentPort?.on('message', (job: Job) => {
  let ok = false;
  try {
    ok = bcrypt.compareSync(job.password, job.hash);
  } catch {
    ok = false; // a malformed hash never matches
  }
  parentPort?.postMessage({ id: job.id, ok });
});
