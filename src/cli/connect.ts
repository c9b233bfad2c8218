/** `wsvia connect URL`: a WebSocket client with curl's proxy options, for people and for scripts. */
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { connect, type ConnectOptions } from '../client/connect.js';
import { closeReason } from '../client/keepalive.js';
import { ReconnectingWebSocket } from '../client/reconnecting.js';
import { EXIT_CODES, exitCodeFor, isWsviaError, WsviaError } from '../errors.js';
import { formatTraceEvent } from '../observe/format-trace.js';
import { positiveNumber, readFlagFile } from './flag-values.js';
import { ALL_EXIT_CODES, exitCodesHelp, reportError, reportUsage, UsageError } from './output.js';
import { ROUTE_FLAGS, ROUTE_USAGE, routeOptionsFrom } from './route-options.js';

export const usage = `usage: wsvia connect URL [options]

Opens a WebSocket to URL (ws:// or wss://), directly or through a proxy, prints what it receives on stdout
and sends each line of stdin as a text message.

${ROUTE_USAGE}      --proxy-header 'K: V'  extra header on the CONNECT request (repeatable)
      --proxy-ca FILE        trust this CA for an https:// proxy
      --proxy-insecure       do not verify an https:// proxy's certificate

server:
  -H, --header 'K: V'        extra header on the upgrade request (repeatable)
      --subprotocol NAME     offer a subprotocol (repeatable)
      --origin ORIGIN        Origin header
      --ca FILE              trust this CA for the server's certificate
  -k, --insecure             do not verify the server's certificate

behaviour:
      --send TEXT            send TEXT after open (repeatable, in order); stdin is then not read
      --expect N             exit 0 after N messages received
      --json                 one JSON object per event on stdout
      --trace                print the handshake hop by hop on stderr (credentials redacted)
      --ping SECONDS         send a ping every SECONDS; no pong by the next one closes (PING_TIMEOUT)
      --reconnect            reconnect after a drop, with exponential backoff and jitter
      --timeout SECONDS      limit for each step: tcp, tunnel, tls, upgrade (default 10)
  -h, --help

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
  header: { type: 'string', short: 'H', multiple: true },
  subprotocol: { type: 'string', multiple: true },
  origin: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean', short: 'k' },
  send: { type: 'string', multiple: true },
  expect: { type: 'string' },
  json: { type: 'boolean' },
  trace: { type: 'boolean' },
  ping: { type: 'string' },
  reconnect: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

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
  const options: ConnectOptions = {
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
  return {
    help: false as const,
    url: positionals[0] as string,
    options,
    send: values.send ?? [],
    expect,
    json: values.json ?? false,
    trace: values.trace ?? false,
    reconnect: values.reconnect ?? false,
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
  const { url, json, expect } = args;
  const options: ConnectOptions = args.trace
    ? { ...args.options, trace: (e) => process.stderr.write(`${formatTraceEvent(e)}\n`) }
    : args.options;
  const emit = (o: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  let received = 0;
  const onMessage = (data: Buffer, isBinary: boolean): boolean => {
    received++;
    if (json)
      emit({
        event: 'message',
        binary: isBinary,
        data: isBinary ? data.toString('hex') : data.toString('utf8'),
      });
    else process.stdout.write(`${isBinary ? data.toString('hex') : data.toString('utf8')}\n`);
    return expect !== undefined && received >= expect;
  };

  if (args.reconnect) return runReconnecting(url, options, args, emit, onMessage);

  let ws: WebSocket;
  try {
    ws = await connect(url, options);
  } catch (e) {
    return reportError(e, json);
  }
  if (json) emit({ event: 'open', url, protocol: ws.protocol });
  return new Promise<number>((resolve) => {
    let exitCode: number | undefined;
    let rl: readline.Interface | undefined;
    const finish = (code: number): void => {
      rl?.close();
      resolve(code);
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (onMessage(data, isBinary) && exitCode === undefined) {
        exitCode = EXIT_CODES.ok;
        ws.close(1000);
      }
    });
    ws.on('error', () => {});
    ws.on('close', (code: number, reason: Buffer) => {
      const dead = closeReason(ws);
      if (json)
        emit({ event: 'close', code, reason: reason.toString(), ...(dead ? { error: dead.toJSON() } : {}) });
      if (dead) return finish(reportError(dead, false));
      if (exitCode !== undefined) return finish(exitCode);
      if (expect !== undefined && received < expect) {
        return finish(
          reportError(
            new WsviaError(
              'WEBSOCKET_CLOSED',
              `the connection closed (code ${code}) after ${received} of ${expect} expected messages`,
              { hop: 'websocket' },
            ),
          ),
        );
      }
      finish(code === 1000 || code === 1001 || code === 1005 ? EXIT_CODES.ok : EXIT_CODES.closed);
    });
    for (const text of args.send) ws.send(text);
    if (expect === 0) {
      exitCode = EXIT_CODES.ok;
      ws.close(1000);
      return;
    }
    if (args.send.length === 0) {
      rl = readline.createInterface({ input: process.stdin, terminal: false });
      rl.on('line', (line) => {
        if (ws.readyState === ws.OPEN) ws.send(line);
      });
      rl.on('close', () => {
        // stdin ended: close once what was sent has been answered, unless messages are still expected.
        if (expect === undefined && ws.readyState === ws.OPEN) ws.close(1000);
      });
    }
  });
}

function runReconnecting(
  url: string,
  options: ConnectOptions,
  args: Extract<ReturnType<typeof parseConnectArgs>, { help: false }>,
  emit: (o: Record<string, unknown>) => void,
  onMessage: (data: Buffer, isBinary: boolean) => boolean,
): Promise<number> {
  return new Promise<number>((resolve) => {
    const client = new ReconnectingWebSocket(url, { ...options, reconnect: {} });
    let sentInitial = false;
    client.on('open', (ws, attempt) => {
      if (args.json) emit({ event: 'open', url, protocol: ws.protocol, attempt });
      else if (attempt > 0) process.stderr.write(`wsvia: reconnected after ${attempt} failed attempt(s)\n`);
      if (!sentInitial) {
        sentInitial = true;
        for (const text of args.send) client.send(text);
      }
    });
    client.on('message', (data, isBinary) => {
      if (onMessage(data, isBinary)) {
        client.close(1000);
        resolve(EXIT_CODES.ok);
      }
    });
    client.on('close', (code, reason, again) => {
      if (args.json) emit({ event: 'close', code, reason, reconnecting: again });
    });
    client.on('reconnecting', (attempt, delay, cause) => {
      if (args.json) emit({ event: 'reconnecting', attempt, delayMs: delay, error: cause.toJSON() });
      else
        process.stderr.write(
          `wsvia: ${cause.summary} [${cause.code}]; reconnecting in ${delay} ms (attempt ${attempt})\n`,
        );
    });
    client.on('error', (err) => resolve(reportError(err, args.json)));
    if (args.send.length === 0) {
      const rl = readline.createInterface({ input: process.stdin, terminal: false });
      rl.on('line', (line) => {
        try {
          client.send(line);
        } catch (e) {
          if (isWsviaError(e)) process.stderr.write(`wsvia: ${e.message}\n`);
        }
      });
      rl.on('close', () => {
        if (args.expect === undefined) {
          client.close(1000);
          resolve(EXIT_CODES.ok);
        }
      });
    }
    client.start();
  }).then((code) => code ?? exitCodeFor('WEBSOCKET_CLOSED'));
}
