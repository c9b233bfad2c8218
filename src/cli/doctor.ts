/**
 * `wsvia doctor URL`: why a WebSocket fails or drops on this network, hop by hop. Takes every route and TLS
 * option of `wsvia connect` (parsed by the same function) plus the doctor's own flags.
 */
import {
  formatIdleProgress,
  formatInterrupted,
  formatStep,
  formatVerdict,
  progressBar,
} from '../doctor/format-report.js';
import { reportToJSON, type DoctorReport, type DoctorStep, type IdleProgress } from '../doctor/report.js';
import { runDoctor, type DoctorOptions } from '../doctor/run-doctor.js';
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
      --idle-probe SECONDS   open several silent WebSockets for up to SECONDS and find where the path cuts them;
                             each one is printed as it ends, and Ctrl-C prints what was found so far (exit 130)
      --json                 one JSON object on stdout: { ok, code, summary, steps, idle, advice }
      --trace                also print the handshake hop by hop on stderr (credentials redacted)

route, proxy and server: every option of 'wsvia connect' (-x/--proxy, --no-proxy, --noproxy, -U/--proxy-user,
--proxy-header, --proxy-ca, --proxy-insecure, -H/--header, --subprotocol, --origin, --ca, -k/--insecure,
--timeout SECONDS); see 'wsvia connect --help'.

Exits as wsvia connect would for the same failure, or 130 when interrupted.
${exitCodesHelp([...ALL_EXIT_CODES, EXIT_CODES.interrupted])}`;

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

/**
 * The report as the doctor finds it: each step on stdout as soon as it is known, the idle probe's connections as
 * they end, a progress bar on a TTY's stderr; on Ctrl-C, what was found so far. With --json, one object at the end.
 */
class LiveReport {
  readonly #json: boolean;
  readonly #tty: boolean;
  readonly #steps: DoctorStep[] = [];
  #idle: IdleProgress | undefined;
  #idleStarted = 0;
  #ticker: NodeJS.Timeout | undefined;

  constructor(options: { json: boolean; tty: boolean; title: string }) {
    this.#json = options.json;
    this.#tty = options.tty;
    if (!this.#json) process.stdout.write(`${options.title}\n\n`);
  }

  step(s: DoctorStep): void {
    this.#steps.push(s);
    // The idle probe's connections were printed as they ended: its step line goes without them.
    if (!this.#json) this.#print(formatStep(s.step === 'idle' ? { ...s, more: [] } : s));
  }

  idle(p: IdleProgress): void {
    this.#idle = p;
    if (p.done === 0) {
      this.#idleStarted = performance.now();
      if (this.#tty) this.#ticker = setInterval(() => this.#drawBar(), 1000);
    }
    if (!this.#json) this.#print(formatIdleProgress(p));
    else this.#drawBar();
    if (p.done === p.total) this.stopBar();
  }

  end(report: DoctorReport): void {
    this.stopBar();
    if (this.#json) process.stdout.write(`${JSON.stringify(reportToJSON(report))}\n`);
    else process.stdout.write(formatVerdict(report));
  }

  interrupted(): void {
    this.stopBar();
    if (!this.#json) return void process.stdout.write(formatInterrupted(this.#idle));
    const partial: DoctorReport = {
      ok: false,
      code: null,
      summary: 'interrupted (Ctrl-C) before the diagnosis ended',
      steps: this.#steps,
      idle: this.#idle?.soFar,
      advice: [],
    };
    process.stdout.write(`${JSON.stringify(reportToJSON(partial))}\n`);
  }

  /** Prints a line above the bar, which is drawn again below it. */
  #print(text: string): void {
    if (this.#ticker) process.stderr.write('\r\x1b[K');
    process.stdout.write(text);
    this.#drawBar();
  }

  #drawBar(): void {
    if (!this.#tty || !this.#ticker || !this.#idle) return;
    process.stderr.write(
      progressBar(this.#idle.done, this.#idle.total, performance.now() - this.#idleStarted),
    );
  }

  /** Ends the progress bar's line (also when the run failed). */
  stopBar(): void {
    if (!this.#ticker) return;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    process.stderr.write('\n');
  }
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
  const live = new LiveReport({
    json: args.json,
    tty: process.stderr.isTTY === true,
    title: `wsvia doctor ${redactUrl(args.url)}`,
  });
  const options: DoctorOptions = {
    ...args.options,
    ...(args.trace ? { trace: (e) => process.stderr.write(`${formatTraceEvent(e)}\n`) } : {}),
    ...(idleProbe === undefined ? {} : { idleProbeSeconds: idleProbe }),
    onStep: (s) => live.step(s),
    onIdleProbe: (p) => live.idle(p),
  };
  // Ctrl-C: what was found so far, then exit 130 at once (probe connections may have minutes of silence left).
  const onInterrupt = (): void => {
    live.interrupted();
    process.exit(EXIT_CODES.interrupted);
  };
  process.once('SIGINT', onInterrupt);
  try {
    const report = await runDoctor(args.url, options);
    live.end(report);
    return report.code === null ? EXIT_CODES.ok : exitCodeFor(report.code, report.status);
  } catch (e) {
    return reportError(e, args.json);
  } finally {
    live.stopBar();
    process.removeListener('SIGINT', onInterrupt);
  }
}
