/** `wsvia echo`: a WebSocket echo server on loopback, ws or wss. */
import { parseArgs } from 'node:util';
import { startEchoServer } from '../echo/echo-server.js';
import { makeSelfSigned } from '../echo/self-signed.js';
import { EXIT_CODES, isWsviaError } from '../errors.js';
import { serverSecureContext } from '../serve/tls-identity.js';
import { readFlagFile } from './flag-values.js';
import { reportError, reportUsage, UsageError } from './output.js';
import { waitForSignal } from './server-lifecycle.js';

export const usage = `usage: wsvia echo [options]

A WebSocket echo server: every message comes back as sent (text as text, binary as binary).

  --host HOST        address to listen on (default 127.0.0.1)
  --port PORT        port (default 8765; 0 lets the system choose)
  --tls              wss, with a freshly generated self-signed certificate (needs openssl)
  --cert FILE        wss with this certificate (PEM) ...
  --key FILE         ... and this key
  --mirror           first message to each client: a JSON report of the upgrade request as received
  --subprotocol P    accept this subprotocol (repeatable)
  -h, --help

Prints its URL when ready; stops on SIGINT or SIGTERM.
exit codes: 0 stopped by a signal, 1 failure (a port in use), 2 usage
`;

/** The flags of `wsvia echo` (util.parseArgs' table; shell completion reads it too). */
export const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  tls: { type: 'boolean' },
  cert: { type: 'string' },
  key: { type: 'string' },
  mirror: { type: 'boolean' },
  subprotocol: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: OPTIONS,
    }));
    if (values.port !== undefined && !/^\d{1,5}$/.test(values.port))
      throw new UsageError(`--port expects a port number, got ${values.port}`);
    if ((values.cert === undefined) !== (values.key === undefined))
      throw new UsageError('--cert and --key go together');
  } catch (e) {
    return reportUsage(e, usage);
  }
  if (values.help) {
    process.stdout.write(usage);
    return EXIT_CODES.ok;
  }
  let cert: { cert: Buffer; key: Buffer } | undefined;
  try {
    // An unreadable certificate is a configuration error (exit 2), found before anything listens.
    if (values.cert !== undefined && values.key !== undefined) {
      cert = { cert: readFlagFile(values.cert, '--cert'), key: readFlagFile(values.key, '--key') };
      serverSecureContext(cert, '--cert/--key');
    }
  } catch (e) {
    return isWsviaError(e) ? reportError(e) : reportUsage(e, usage);
  }
  try {
    const tls = cert ?? (values.tls ? makeSelfSigned() : undefined);
    const server = await startEchoServer({
      host: values.host ?? '127.0.0.1',
      port: values.port === undefined ? 8765 : Number(values.port),
      ...(tls ? { tls } : {}),
      mirror: values.mirror ?? false,
      ...(values.subprotocol ? { protocols: values.subprotocol } : {}),
    });
    process.stderr.write(`wsvia echo listening on ${server.url}\n`);
    await waitForSignal();
    await server.close();
    return EXIT_CODES.ok;
  } catch (e) {
    return reportError(e);
  }
}
