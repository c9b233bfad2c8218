/**
 * The readable report: one line per step (a mark, the step, its time, the key detail) with its evidence indented
 * below, then the verdict and the advice. Made to be pasted into a ticket.
 */
import type { DoctorReport } from './report.js';

function time(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`;
}

/** Renders a report as `wsvia doctor` prints it: one line per step, the verdict, then advice. */
export function formatReport(r: DoctorReport, title?: string): string {
  const lines: string[] = [];
  if (title) lines.push(title, '');
  for (const s of r.steps) {
    const mark = !s.ok ? '✗' : s.warning ? '!' : '✓';
    lines.push(`${mark} ${s.step.padEnd(9)} ${time(s.ms).padStart(9)}  ${s.detail}`);
    for (const m of s.more ?? []) lines.push(`${' '.repeat(22)}${m}`);
  }
  lines.push('');
  lines.push(r.ok ? `verdict: OK — ${r.summary}` : `verdict: FAILED [${r.code ?? '?'}] — ${r.summary}`);
  if (r.idle) {
    lines.push(
      r.idle.cutoffSeconds === null
        ? `idle: no cutoff found (${r.idle.survivedSeconds} s of silence survived)`
        : `idle: cut after ${r.idle.cutoffSeconds} s of silence (${r.idle.how}); ${r.idle.survivedSeconds} s survived`,
    );
  }
  if (r.advice.length) {
    lines.push('advice:');
    for (const a of r.advice) lines.push(`  - ${a}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A one-line progress bar for the idle probe (stderr, TTY only). */
export function progressBar(elapsedMs: number, totalMs: number, width = 30): string {
  const f = totalMs <= 0 ? 1 : Math.min(1, elapsedMs / totalMs);
  const full = Math.round(f * width);
  return `\ridle probe [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${Math.round(elapsedMs / 1000)}/${Math.round(totalMs / 1000)} s`;
}
