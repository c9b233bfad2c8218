/**
 * A hand-written SVG bar chart of the results: one panel per figure, one bar per peer, wsvia in its own colour,
 * the direct limit hatched grey. Bars are scaled to the largest value in their panel; the label says which way is
 * better. No charting dependency.
 */
import { formatValue, type Row, type Section } from './report.js';

const PANEL_W = 300;
const BAR_H = 14;
const GAP = 4;
const LABEL_W = 130;
const COLS = 3;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function colour(name: string, isLimit: boolean): string {
  if (isLimit) return '#b8b8b8';
  if (name.startsWith('wsvia')) return '#e8590c';
  return '#4c6ef5';
}

export function chart(sections: readonly Section[], subtitle: string): string {
  const parts: string[] = [];
  let y = 40;
  const width = COLS * (PANEL_W + 20) + 20;
  for (const section of sections) {
    parts.push(`<text x="20" y="${y}" font-size="15" font-weight="bold">${esc(section.title)}</text>`);
    y += 12;
    // A panel shows only the rows that have this figure (the tunnel rows have no bridge figures, and so on).
    const rowsOf = (key: string): Row[] =>
      section.rows.filter((r) => r.values[key] !== undefined && Number.isFinite(r.values[key]));
    const most = Math.max(1, ...section.metrics.map((m) => rowsOf(m.key).length));
    const panelH = 34 + most * (BAR_H + GAP);
    section.metrics.forEach((m, i) => {
      const rows = rowsOf(m.key);
      const px = 20 + (i % COLS) * (PANEL_W + 20);
      const py = y + Math.floor(i / COLS) * (panelH + 10);
      const values = rows
        .map((r) => r.values[m.key])
        .filter((v): v is number => v !== undefined && Number.isFinite(v));
      const max = Math.max(...values, 1e-9);
      parts.push(`<g transform="translate(${px},${py})">`);
      parts.push(`<rect width="${PANEL_W}" height="${panelH}" fill="#f8f9fa" stroke="#dee2e6"/>`);
      parts.push(
        `<text x="8" y="18" font-size="12" font-weight="bold">${esc(`${m.label} (${m.unit})`)}</text>` +
          `<text x="${PANEL_W - 8}" y="18" font-size="10" text-anchor="end" fill="#666">${m.better} is better</text>`,
      );
      rows.forEach((r, j) => {
        const v = r.values[m.key];
        const by = 28 + j * (BAR_H + GAP);
        const barMax = PANEL_W - LABEL_W - 60;
        const w = v !== undefined && Number.isFinite(v) ? Math.max(1, (v / max) * barMax) : 0;
        parts.push(`<text x="8" y="${by + BAR_H - 3}" font-size="11">${esc(r.name)}</text>`);
        if (w > 0) {
          parts.push(
            `<rect x="${LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${colour(r.name, r.isLimit === true)}"/>`,
          );
        }
        parts.push(
          `<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${by + BAR_H - 3}" font-size="10">${esc(formatValue(v, m.digits))}</text>`,
        );
      });
      parts.push('</g>');
    });
    y += Math.ceil(section.metrics.length / COLS) * (panelH + 10) + 30;
  }
  const height = y;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="22" font-size="12" fill="#444">${esc(subtitle)}</text>
${parts.join('\n')}
</svg>
`;
}
