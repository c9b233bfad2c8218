/**
 * `wsvia demo` (what `npm start` runs): the whole path on loopback, shown hop by hop. Starts an echo server,
 * then `wsvia connect --trace` sends a message and waits for its echo.
 */
import { startEchoServer } from '../echo/echo-server.js';
import { EXIT_CODES } from '../errors.js';
import { run as runConnect } from './connect.js';
import { reportError } from './output.js';

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'usage: wsvia demo\n\nStarts an echo server on loopback and connects to it with --trace.\n',
    );
    return EXIT_CODES.ok;
  }
  let echo;
  try {
    echo = await startEchoServer({ host: '127.0.0.1', port: 0 });
  } catch (e) {
    return reportError(e);
  }
  const say = (s: string): boolean => process.stderr.write(`\n=== ${s}\n`);
  say(`echo server: ${echo.url}`);
  const args = [echo.url, '--trace', '--send', 'hello through wsvia', '--expect', '1', '--no-proxy'];
  say(`wsvia connect ${args.join(' ')}`);
  const code = await runConnect(args);
  await echo.close();
  say(code === 0 ? 'done: the message came back' : `failed with exit code ${code}`);
  return code;
}
