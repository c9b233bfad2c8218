/**
 * `wsvia demo` (what `npm start` runs): the whole path on loopback, shown hop by hop. Starts an echo server and
 * `wsvia proxy` (as its own process, exactly as a user would run it), then `wsvia connect --trace` sends a message
 * through the proxy and waits for its echo. The transcript shows all four hops: client > proxy, proxy > client,
 * client > server, server > client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startEchoServer, type EchoServer } from '../echo/echo-server.js';
import { EXIT_CODES } from '../errors.js';
import { run as runConnect } from './connect.js';
import { ALL_EXIT_CODES, exitCodesHelp, reportError, reportUsage } from './output.js';
import { wsviaCommand } from './self.js';

/** Starts `wsvia proxy ARGS` and resolves with its URL once it printed it. */
function startProxyProcess(args: readonly string[]): Promise<{ child: ChildProcess; url: string }> {
  const [program, ...prefix] = wsviaCommand();
  const child = spawn(program, [...prefix, 'proxy', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('wsvia proxy did not start within 15 s'));
    }, 15_000);
    let ready = false;
    // The proxy says where it listens on stderr and writes its access log to stdout: both go to the transcript.
    const onOutput = (b: Buffer): void => {
      if (ready) return void process.stderr.write(b);
      out += b.toString();
      const m = /wsvia proxy listening on (\S+)/.exec(out);
      if (m) {
        ready = true;
        clearTimeout(timer);
        process.stderr.write(out);
        resolve({ child, url: m[1] as string });
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wsvia proxy exited with code ${code}`));
    });
  });
}

/** `wsvia demo` takes no options but --help (shell completion reads this table). */
export const OPTIONS = { help: { type: 'boolean', short: 'h' } } as const;

export async function run(argv: string[]): Promise<number> {
  try {
    if (parseArgs({ args: argv, options: OPTIONS }).values.help) {
      process.stdout.write(
        `usage: wsvia demo\n\nStarts an echo server and wsvia proxy on loopback, and connects through it with --trace.\n\n${exitCodesHelp(ALL_EXIT_CODES)}`,
      );
      return EXIT_CODES.ok;
    }
  } catch (e) {
    return reportUsage(e, 'demo');
  }
  const say = (s: string): boolean => process.stderr.write(`\n=== ${s}\n`);
  let echo: EchoServer | undefined;
  let proxy: { child: ChildProcess; url: string } | undefined;
  try {
    echo = await startEchoServer({ host: '127.0.0.1', port: 0 });
    say(`echo server: ${echo.url}`);
    // The proxy denies loopback and every port but 443 and 80 by default: the demo allows exactly the echo server.
    const proxyArgs = [
      '--port',
      '0',
      '--allow',
      '127.0.0.1',
      '--allow-ports',
      String(echo.port),
      '--access-log',
      '-',
    ];
    say(`wsvia proxy ${proxyArgs.join(' ')}`);
    proxy = await startProxyProcess(proxyArgs);
  } catch (e) {
    proxy?.child.kill('SIGKILL');
    await echo?.close();
    return reportError(e);
  }
  const args = [echo.url, '--proxy', proxy.url, '--trace', '--send', 'hello through wsvia', '--expect', '1'];
  say(`wsvia connect ${args.join(' ')}`);
  const code = await runConnect(args);
  const exited = new Promise<void>((r) => proxy.child.once('exit', () => r()));
  say('the proxy access log line for that tunnel, then SIGTERM');
  proxy.child.kill('SIGTERM');
  await exited;
  await echo.close();
  say(code === 0 ? 'done: the message came back through the proxy' : `failed with exit code ${code}`);
  return code;
}
