/** How to start this same `wsvia` as a child process, from an npm install or as a single executable. */
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';

/** The program and the arguments before the command: `[node, .../main.js]`, or the single executable alone. */
export function wsviaCommand(): [string, ...string[]] {
  // A single executable is node with the bundled CLI as its main script: it takes the command directly.
  if (isSea()) return [process.execPath];
  return [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))];
}
