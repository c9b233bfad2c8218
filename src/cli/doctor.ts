/**
 * `wsvia doctor URL`: why a WebSocket fails or drops on this network, hop by hop. Takes every route and TLS
 * option of `wsvia connect` (parsed by the same function) plus the doctor's own flags.
 */
import { runDoctor, type DoctorOptions } from '../doctor/run-doctor.js';
import { formatReport, progressBar } from '../doctor/format-report.js';
import { reportToJSON } from '../doctor/report.js';
import { EXIT_CODES, exitCodeFor } from '../errors.js';
import { formatTraceEvent } from '../observe/format-trace.js';
import { redactUrl } from '../observe/redact.js';
import { OPTIONS as CONNECT_OPTIONS, parseConnectArgs } from './connect.js';
import { ALL_EXIT_CODES, exitCodesHelp, reportError, reportUsage, UsageError } from './output.js';

export const usage = `usage: wsvia doctor URL [options]

Runs the path wsvia connect runs (same options, same route choice, same errors) step by step and explains it:
route, dns, tcp, proxy (the CONNECT exchange), tls (version, ALPN, certificate chain, interception), upgrade,
roundtrip (one message each way; a 'wsvia echo --mirror' target also shows what intermediaries changed in the
request), and with --idle-probe how long the path lets a silent WebSocket live.

doctor:
      --idle-probe SECONDS   open several silent WebSockets for up to SECONDS and find where the path cuts them
      --json                 one JSON object on stdout: { ok, code, summary, steps, idle, advice }
      --trace                also print the handshake hop by hop on stderr (credentials redacted)

route, proxy and server: every option of 'wsvia connect' (-x/--proxy, --no-proxy, --noproxy, -U/--proxy-user,
--proxy-header, --proxy-ca, --proxy-insecure, -H/--header, --subprotocol, --origin, --ca, -k/--insecure,
--timeout SECONDS); see 'wsvia connect --help'.

Exits as wsvia connect would for the same failure.
${exitCodesHelp(ALL_EXIT_CODES)}`;

/** The flags of `wsvia doctor`: wsvia connect's and --idle-probe (shell completion reads this table). */
export const OPTIONS = { ...CONNECT_OPTIONS, 'idle-probe': { type: 'string' } } as const;

/** The doctor's own flags, taken out before the rest goes to wsvia connect's parser. */
export function splitDoctorArgs(argv: readonly string[]): { rest: string[]; idleProbe: number | undefined } {
  const rest: string[] = [];
  let idleProbe: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    let value: string | undefined;
    if (a === '--idle-probe') {
      value = argv[++i];
      if (value === undefined) throw new UsageError('--idle-probe expects a number of seconds');
    } else if (a.startsWith('--idle-probe=')) value = a.slice('--idle-probe='.length);
    else {
      rest.push(a);
      continue;
    }
    const n = Number(value);
    if (!Number.isFinite(n) || n < 1 || n > 3600)
      throw new UsageError(`--idle-probe expects seconds between 1 and 3600, got ${JSON.stringify(value)}`);
    idleProbe = n;
  }
  return { rest, idleProbe };
}

export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseConnectArgs>;
  let idleProbe: number | undefined;
  try {
    const split = splitDoctorArgs(argv);
    idleProbe = split.idleProbe;
    args = parseConnectArgs(split.rest);
  } catch (e) {
    return reportUsage(e, 'doctor');
  }
  if (args.help) {
    process.stdout.write(usage);
    return EXIT_CODES.ok;
  }
  const tty = process.stderr.isTTY === true;
  const options: DoctorOptions = {
    ...args.options,
    ...(args.trace ? { trace: (e) => process.stderr.write(`${formatTraceEvent(e)}\n`) } : {}),
    ...(idleProbe === undefined ? {} : { idleProbeSeconds: idleProbe }),
    ...(idleProbe !== undefined && tty
      ? { onIdleProgress: (done: number, total: number) => process.stderr.write(progressBar(done, total)) }
      : {}),
  };
  try {
    const report = await runDoctor(args.url, options);
    if (idleProbe !== undefined && tty) process.stderr.write('\n');
    if (args.json) process.stdout.write(`${JSON.stringify(reportToJSON(report))}\n`);
    else process.stdout.write(formatReport(report, `wsvia doctor ${redactUrl(args.url)}`));
    return report.code === null ? EXIT_CODES.ok : exitCodeFor(report.code, report.status);
  } catch (e) {
    return reportError(e, args.json);
  }
}
