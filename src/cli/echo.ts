/** `wsvia echo`: a WebSocket echo server on loopback, ws or wss. */
import { parseArgs } from 'node:util';
import type { FlagValues } from '../config.js';
import { startEchoServer } from '../echo/echo-server.js';
import { makeSelfSigned } from '../echo/self-signed.js';
import { EXIT_CODES } from '../errors.js';
import { unbracket } from '../protocol/authority.js';
import { mergeConfigFile, parseMerged } from './config-file.js';
import { readTlsFiles, type TlsFiles } from './flag-values.js';
import { parseListen, parsePort, type ListenAddress } from './listen-address.js';
import { exitCodesHelp, reportError, reportUsage, SERVER_EXIT_CODES, UsageError } from './output.js';
import { waitForSignal } from './server-lifecycle.js';

export const usage = `usage: wsvia echo [options]

A WebSocket echo server: every message comes back as sent (text as text, binary as binary).

  --listen [HOST:]PORT   where to listen (default 127.0.0.1:8765; port 0 lets the system choose)
  --host HOST, --port PORT  the same, in two flags
  --tls                  wss, with a freshly generated self-signed certificate (needs openssl)
  --tls-cert FILE        wss with this certificate (PEM) ...
  --tls-key FILE         ... and this key (--cert and --key are the same flags)
  --mirror               first message to each client: a JSON report of the upgrade request as received
  --subprotocol P        accept this subprotocol (repeatable)
  --config FILE          a YAML file whose keys are these flags' names; flags given win
  -h, --help

Prints its URL when ready; stops on SIGINT or SIGTERM.
${exitCodesHelp(SERVER_EXIT_CODES)}`;

/** The flags of `wsvia echo` (util.parseArgs' table; shell completion reads it too). */
export const OPTIONS = {
  listen: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  tls: { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  mirror: { type: 'boolean' },
  subprotocol: { type: 'string', multiple: true },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface EchoArgs {
  readonly listen: ListenAddress;
  readonly tlsFiles: TlsFiles | undefined;
  readonly selfSigned: boolean;
  readonly mirror: boolean;
  readonly protocols: string[] | undefined;
}

function str(v: FlagValues, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

/** `--listen`, or its aliases `--host` and `--port`. */
function listenOf(v: FlagValues): ListenAddress {
  const listen = str(v, 'listen');
  const host = str(v, 'host');
  const port = str(v, 'port');
  if (listen === undefined)
    return {
      host: unbracket(host ?? '127.0.0.1'),
      port: port === undefined ? 8765 : parsePort(port, '--port'),
    };
  if (host !== undefined || port !== undefined)
    throw new UsageError('--listen says what --host and --port say: give one or the other');
  return parseListen(listen, '--listen');
}

/** One spelling of a flag that has an alias (`--tls-cert` or `--cert`). */
function either(v: FlagValues, name: string, alias: string): { value?: string; flag: string } {
  const a = str(v, name);
  const b = str(v, alias);
  if (a !== undefined && b !== undefined)
    throw new UsageError(`--${name} and --${alias} are the same flag: give one`);
  return b === undefined
    ? { ...(a === undefined ? {} : { value: a }), flag: `--${name}` }
    : { value: b, flag: `--${alias}` };
}

function echoArgs(v: FlagValues): EchoArgs {
  const cert = either(v, 'tls-cert', 'cert');
  const key = either(v, 'tls-key', 'key');
  const tlsFiles = readTlsFiles(cert.value, key.value, cert.flag, key.flag);
  if (tlsFiles && v['tls'] === true)
    throw new UsageError('--tls generates a certificate: drop it, or --tls-cert');
  const protocols = v['subprotocol'];
  return {
    listen: listenOf(v),
    tlsFiles,
    selfSigned: v['tls'] === true,
    mirror: v['mirror'] === true,
    protocols: Array.isArray(protocols) ? protocols : undefined,
  };
}

export async function run(argv: string[]): Promise<number> {
  let args: EchoArgs;
  try {
    const { values } = parseArgs({ args: argv, options: OPTIONS });
    if (values.help) {
      process.stdout.write(usage);
      return EXIT_CODES.ok;
    }
    // An unreadable certificate is a configuration error (exit 2), found before anything listens.
    const aliases = [
      [['listen'], ['host', 'port']],
      [['tls-cert'], ['cert']],
      [['tls-key'], ['key']],
    ];
    args = parseMerged(mergeConfigFile(values, OPTIONS, aliases), echoArgs);
  } catch (e) {
    return reportUsage(e, 'echo');
  }
  try {
    const tls = args.tlsFiles ?? (args.selfSigned ? makeSelfSigned() : undefined);
    const server = await startEchoServer({
      host: args.listen.host,
      port: args.listen.port,
      ...(tls ? { tls } : {}),
      mirror: args.mirror,
      ...(args.protocols ? { protocols: args.protocols } : {}),
    });
    process.stderr.write(`wsvia echo listening on ${server.url}\n`);
    await waitForSignal();
    await server.close();
    return EXIT_CODES.ok;
  } catch (e) {
    return reportError(e);
  }
}
