/** `wsvia --version`: the package version, the runtime, and what a single executable lacks. */
import { isSea } from 'node:sea';

/** The package's version; test/package.test.ts checks it against package.json. */
export const VERSION = '0.1.0';

export function versionText(): string {
  const head = `wsvia ${VERSION} (Node.js ${process.version}`;
  if (!isSea()) return `${head})\n`;
  // The bundle leaves the native addons out: ws masks in JavaScript and Negotiate reports kerberos missing.
  return `${head}, single executable)\nwithout the optional native addons: bufferutil (WebSocket masking runs in JavaScript), kerberos (no Negotiate proxy auth)\n`;
}
