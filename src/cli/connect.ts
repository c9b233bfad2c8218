/** `wsvia connect URL`: a WebSocket client with curl's proxy options, for people and for scripts. */
import { parseArgs } from 'node:util';
import type { ConnectOptions } from '../client/connect.js';
import { EXIT_CODES } from '../errors.js';
import { formatTraceEvent } from '../observe/format-trace.js';
import { ConnectOutput, type DataMode } from './connect-output.js';
import { runReconnecting } from './connect-reconnect.js';
import { ConnectSession, type SessionArgs } from './connect-session.js';
import { positiveNumber, readFlagFile } from './flag-values.js';
import { ALL_EXIT_CODES, exitCodesHelp, reportUsage, UsageError } from './output.js';
import { ROUTE_FLAGS, ROUTE_USAGE, routeOptionsFrom } from './route-options.js';

export const usage = `usage: wsvia connect URL [options]

Opens a WebSocket to URL (ws:// or wss://), directly or through a proxy, prints what it receives on stdout
and sends each line of stdin as a text message.

${ROUTE_USAGE}      --proxy-header 'K: V'  extra header on the CONNECT request (repeatable)
      --proxy-ca FILE        trust this CA for an https:// proxy
      --proxy-insecure       do not verify an https:// proxy's certificate
      --proxy-cert FILE      client certificate (PEM) for an https:// proxy that asks for one
      --proxy-key FILE       its private key (PEM)

server:
  -H, --header 'K: V'        extra header on the upgrade request (repeatable)
      --subprotocol NAME     offer a subprotocol (repeatable)
      --origin ORIGIN        Origin header
      --ca FILE              trust this CA for the server's certificate
  -k, --insecure             do not verify the server's certificate
      --cert FILE            client certificate (PEM) for a server that asks for one
      --key FILE             its private key (PEM)

behaviour:
      --send TEXT            send TEXT after open (repeatable, in order); stdin is then not read. Without
                             --expect, one answer per --send is awaited, then the connection is closed
      --expect N             close (and exit 0) after N messages received
  -1, --one-message          send one message (the first line of stdin, or the first --send), print one, exit
      --text                 stdin lines are text messages (the default); received binary messages are printed
                             as '[binary N bytes] HEX'
  -b, --binary               stdin is sent raw, in chunks, as binary messages; messages are written raw to stdout
      --binary-lines         each line of stdin is a binary message; each message is written raw, then a newline
      --json                 one JSON object per event on stdout (open, message, ping, pong, close, error)
      --show-ping-pong       print the pings and pongs received (on stderr; with --json, as events)
      --close-code CODE      the code of the Close this side sends (1000, or 3000-4999; default 1000)
      --close-reason TEXT    its reason (at most 123 bytes)
      --close-timeout SECS   after sending Close (end of stdin, --expect met), print what still arrives until
                             the server's Close, for at most SECS (default 2)
      --max-time SECONDS     limit for the whole run, connection included (exit 7 when it is reached)
      --trace                print the handshake hop by hop on stderr (credentials redacted)
      --ping SECONDS         send a ping every SECONDS; no pong by the next one closes (PING_TIMEOUT)
      --reconnect            reconnect after a drop, with exponential backoff and jitter
      --timeout SECONDS      limit for each step: tcp, tunnel, tls, upgrade (default 10)
  -h, --help

The end is always said: a Close from the server prints 'closed by server: CODE REASON' on stderr; exit 0 for
1000, 1001 or a Close without a code, 9 for any other code and for a connection cut without a Close. A closed
stdout (| head -1) closes the connection quietly, exit 0. Lines read from stdin that could not be sent (the
connection had closed, or --reconnect's queue was left) are counted on stderr and the exit is not 0. Timeouts
(a step's --timeout, --max-time, a missed pong) exit 7.

${exitCodesHelp(ALL_EXIT_CODES)}`;

function header(text: string, flag: string): [string, string] {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UsageError(`${flag} expects 'Name: value', got ${JSON.stringify(text)}`);
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
}

/** The flags of `wsvia connect` (util.parseArgs' table; shell completion reads it too). */
export const OPTIONS = {
  ...ROUTE_FLAGS,
  'proxy-header': { type: 'string', multiple: true },
  'proxy-ca': { type: 'string' },
  'proxy-insecure': { type: 'boolean' },
  'proxy-cert': { type: 'string' },
  'proxy-key': { type: 'string' },
  header: { type: 'string', short: 'H', multiple: true },
  subprotocol: { type: 'string', multiple: true },
  origin: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean', short: 'k' },
  cert: { type: 'string' },
  key: { type: 'string' },
  send: { type: 'string', multiple: true },
  expect: { type: 'string' },
  'one-message': { type: 'boolean', short: '1' },
  text: { type: 'boolean' },
  binary: { type: 'boolean', short: 'b' },
  'binary-lines': { type: 'boolean' },
  json: { type: 'boolean' },
  'show-ping-pong': { type: 'boolean' },
  'close-code': { type: 'string' },
  'close-reason': { type: 'string' },
  'close-timeout': { type: 'string' },
  'max-time': { type: 'string' },
  trace: { type: 'boolean' },
  ping: { type: 'string' },
  reconnect: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags that shape a `wsvia connect` session (its messages and its end), not the route to the server. */
export const SESSION_FLAGS = [
  'send',
  'expect',
  'one-message',
  'text',
  'binary',
  'binary-lines',
  'json',
  'show-ping-pong',
  'close-code',
  'close-reason',
  'close-timeout',
  'max-time',
  'reconnect',
] as const;

type Values = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof OPTIONS }>
>['values'];

/** A client certificate and key given as a pair of flags; one without the other is a usage error. */
function clientCert(values: Values, certFlag: 'cert' | 'proxy-cert', keyFlag: 'key' | 'proxy-key') {
  const cert = values[certFlag];
  const key = values[keyFlag];
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError(`--${certFlag} and --${keyFlag} go together`);
  return cert === undefined || key === undefined
    ? undefined
    : { cert: readFlagFile(cert, `--${certFlag}`), key: readFlagFile(key, `--${keyFlag}`) };
}

function dataMode(values: Values): DataMode {
  const modes = (['text', 'binary', 'binary-lines'] as const).filter((m) => values[m]);
  if (modes.length > 1) throw new UsageError('give one of --text, --binary, --binary-lines');
  return modes[0] ?? 'text';
}

/** How this side closes: RFC 6455 §7.4 leaves 1000 and 3000-4999 to applications; a reason fits in 123 bytes. */
function closeFrame(values: Values): { code: number; reason: string } {
  const code = values['close-code'] === undefined ? 1000 : Number(values['close-code']);
  if (!Number.isInteger(code) || (code !== 1000 && (code < 3000 || code > 4999)))
    throw new UsageError(`--close-code ${values['close-code']} is out of range: 1000 or 3000-4999`);
  const reason = values['close-reason'] ?? '';
  if (Buffer.byteLength(reason) > 123)
    throw new UsageError(`--close-reason is ${Buffer.byteLength(reason)} bytes, at most 123 fit in a Close`);
  return { code, reason };
}

export function parseConnectArgs(argv: string[]) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  if (values.help) return { help: true as const };
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0 ? 'missing URL' : `unexpected arguments: ${positionals.slice(1).join(' ')}`,
    );
  const timeoutS = positiveNumber(values.timeout, '--timeout');
  const pingS = positiveNumber(values.ping, '--ping');
  const expect = values.expect === undefined ? undefined : Number(values.expect);
  if (expect !== undefined && (!Number.isInteger(expect) || expect < 0))
    throw new UsageError('--expect expects a whole number');
  const headers = Object.fromEntries((values.header ?? []).map((h) => header(h, '--header')));
  const timeoutMs = timeoutS === undefined ? undefined : timeoutS * 1000;
  const maxTimeS = positiveNumber(values['max-time'], '--max-time');
  const closeTimeoutS = positiveNumber(values['close-timeout'], '--close-timeout') ?? 2;
  const server = clientCert(values, 'cert', 'key');
  const proxy = clientCert(values, 'proxy-cert', 'proxy-key');
  const options: ConnectOptions = {
    ...(server ?? {}),
    ...(proxy ? { proxyCert: proxy.cert, proxyKey: proxy.key } : {}),
    ...routeOptionsFrom(values),
    proxyHeaders: (values['proxy-header'] ?? []).map((h) => header(h, '--proxy-header')),
    ...(values['proxy-ca'] !== undefined ? { proxyCa: readFlagFile(values['proxy-ca'], '--proxy-ca') } : {}),
    ...(values['proxy-insecure'] ? { proxyRejectUnauthorized: false } : {}),
    headers,
    ...(values.subprotocol ? { protocols: values.subprotocol } : {}),
    ...(values.origin !== undefined ? { origin: values.origin } : {}),
    ...(values.ca !== undefined ? { ca: readFlagFile(values.ca, '--ca') } : {}),
    ...(values.insecure ? { rejectUnauthorized: false } : {}),
    ...(timeoutMs === undefined
      ? {}
      : { timeouts: { tcp: timeoutMs, tunnel: timeoutMs, tls: timeoutMs, upgrade: timeoutMs } }),
    ...(pingS === undefined ? {} : { ping: { interval: pingS * 1000 } }),
  };
  const session: SessionArgs = {
    url: positionals[0] as string,
    send: values.send ?? [],
    expect,
    one: values['one-message'] ?? false,
    mode: dataMode(values),
    json: values.json ?? false,
    showPingPong: values['show-ping-pong'] ?? false,
    close: closeFrame(values),
    closeTimeoutMs: closeTimeoutS * 1000,
    maxTimeMs: maxTimeS === undefined ? undefined : maxTimeS * 1000,
  };
  return {
    help: false as const,
    // url and json at the top too: wsvia doctor parses its command line with this function.
    url: session.url,
    json: session.json,
    session,
    options,
    trace: values.trace ?? false,
    reconnect: values.reconnect ?? false,
    /** The session flags given (wsvia tunnel refuses them). */
    sessionFlags: SESSION_FLAGS.filter((k) => values[k] !== undefined),
  };
}

export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseConnectArgs>;
  try {
    args = parseConnectArgs(argv);
  } catch (e) {
    return reportUsage(e, 'connect');
  }
  if (args.help) {
    process.stdout.write(usage);
    return EXIT_CODES.ok;
  }
  const options: ConnectOptions = args.trace
    ? { ...args.options, trace: (e) => process.stderr.write(`${formatTraceEvent(e)}\n`) }
    : args.options;
  const output = new ConnectOutput(args.session.mode, args.session.json);
  return args.reconnect
    ? runReconnecting(args.session, options, output)
    : new ConnectSession(args.session, options, output).run();
}
