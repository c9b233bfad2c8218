/**
 * The readable report: one line per step (a mark, the step, its time, the key detail) with its evidence indented
 * below, then the verdict and the advice. Made to be pasted into a ticket.
 */
import type { DoctorReport, DoctorStep, IdleProgress, IdleResult } from './report.js';

/** Evidence lines are indented under the step's detail. */
const EVIDENCE = ' '.repeat(22);

function time(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`;
}

/** One step's line (a mark, the step, its time, the key detail), with its evidence indented below. */
export function formatStep(s: DoctorStep): string {
  const mark = !s.ok ? '✗' : s.warning ? '!' : '✓';
  const lines = [`${mark} ${s.step.padEnd(9)} ${time(s.ms).padStart(9)}  ${s.detail}`];
  for (const m of s.more ?? []) lines.push(`${EVIDENCE}${m}`);
  return `${lines.join('\n')}\n`;
}

/** The idle probe's line while it runs, and the line of each of its connections as it finishes. */
export function formatIdleProgress(p: IdleProgress): string {
  return p.line === undefined
    ? `… idle      ${p.total} silent WebSockets opened; each line below is one as it ends\n`
    : `${EVIDENCE}${p.line}\n`;
}

function idleLine(idle: IdleResult): string {
  return idle.cutoffSeconds === null
    ? `no cutoff found (${idle.survivedSeconds} s of silence survived)`
    : `cut after ${idle.cutoffSeconds} s of silence (${idle.how}); ${idle.survivedSeconds} s survived`;
}

/** What follows the steps: the verdict, the idle result and the advice. */
export function formatVerdict(r: DoctorReport): string {
  const lines: string[] = [''];
  lines.push(r.ok ? `verdict: OK — ${r.summary}` : `verdict: FAILED [${r.code ?? '?'}] — ${r.summary}`);
  if (r.idle) lines.push(`idle: ${idleLine(r.idle)}`);
  if (r.advice.length) {
    lines.push('advice:');
    for (const a of r.advice) lines.push(`  - ${a}`);
  }
  return `${lines.join('\n')}\n`;
}

/** What follows the steps found so far when the run was interrupted (Ctrl-C). */
export function formatInterrupted(idle: IdleProgress | undefined): string {
  const lines = [''];
  if (idle)
    lines.push(
      `idle: interrupted after ${idle.done} of ${idle.total} probe connections${idle.done > 0 ? `: ${idleLine(idle.soFar)}` : ''}`,
    );
  lines.push('verdict: INTERRUPTED — what was found before Ctrl-C is above');
  return `${lines.join('\n')}\n`;
}

/** Renders a report as `wsvia doctor` prints it: one line per step, the verdict, then advice. */
export function formatReport(r: DoctorReport, title?: string): string {
  return `${title ? `${title}\n\n` : ''}${r.steps.map(formatStep).join('')}${formatVerdict(r)}`;
}

/**
 * A one-line progress bar for the idle probe (stderr, TTY only): it counts the probe connections that finished,
 * so it reaches its total exactly when the probe ends, and shows the time spent.
 */
export function progressBar(done: number, total: number, elapsedMs: number, width = 30): string {
  const f = total <= 0 ? 1 : Math.min(1, done / total);
  const full = Math.round(f * width);
  return `\ridle probe [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${done}/${total} connections, ${Math.round(elapsedMs / 1000)} s`;
}
