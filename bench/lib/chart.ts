import fs from 'node:fs';
import path from 'node:path';
import type { BenchReport, MetricResult } from './results.js';
import { goalHolds, goalsFor, goalValue } from './goals.js';

/**
 * The results as one self-contained SVG (no scripts, no fonts or files fetched): a panel per
 * scenario metric, a bar per participant, the project's ratio to uws-raw written on its bar,
 * each goal drawn as a dashed line at its threshold, green when the run met it, red when not.
 */
const W = 960;
const LABEL_W = 150;
const BAR_X = LABEL_W + 10;
const BAR_W = 560;
const ROW_H = 18;
const PANEL_PAD = 40;
const COLORS: Record<string, string> = {
  project: '#1f6feb',
  'uws-raw': '#6e7781',
  'uws-sqlite': '#57606a',
  fastify: '#bf8700',
  socketio: '#8250df',
  'express-socketio': '#cf222e',
  'sqlite-raw': '#6e7781',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function fmtValue(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (a >= 1e5) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 1e4) return `${(v / 1000).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Rows worth a picture: those with a project figure or a goal (p99s and the rest stay in the table). */
function charted(rows: readonly MetricResult[]): MetricResult[] {
  return rows.filter((r) => goalsFor(r).length > 0 || (Object.keys(r.peers).length > 0 && r.metric !== 'p99'));
}

export function renderSvg(report: BenchReport): string {
  const rows = charted(report.scenarios);
  const parts: string[] = [];
  let y = 56;
  for (const r of rows) {
    const who = ['project', ...Object.keys(r.peers)];
    const values = who.map((w) => (w === 'project' ? r.project : r.peers[w] ?? null));
    const goals = goalsFor(r).map((g) => ({ g, v: goalValue(g, r), ok: goalHolds(g, r) }));
    const max = Math.max(1e-9, ...values.map((v) => v ?? 0), ...goals.map((x) => x.v ?? 0)) * 1.05;
    const scale = (v: number) => (v / max) * BAR_W;
    const goalText = goals.map(({ g, ok }) => `${g.label} ${ok === undefined ? '(n/a)' : ok ? '(met)' : '(missed)'}`).join(', ');
    parts.push(
      `<text x="10" y="${y}" class="h">${esc(`${r.name} · ${r.metric}`)}<tspan class="u"> ${esc(`${r.unit}, ${r.better} is better${goalText ? ` · goal ${goalText}` : ''}`)}</tspan></text>`,
    );
    y += 10;
    const top = y;
    who.forEach((w, i) => {
      const v = values[i];
      const by = y + i * ROW_H;
      parts.push(`<text x="${LABEL_W}" y="${by + 13}" class="l" text-anchor="end">${esc(w)}</text>`);
      if (v === null || v === undefined) {
        parts.push(`<text x="${BAR_X}" y="${by + 13}" class="u">n/a${w === 'project' && r.note ? ` (${esc(r.note.slice(0, 90))})` : ''}</text>`);
        return;
      }
      const bw = Math.max(1, scale(v));
      parts.push(`<rect x="${BAR_X}" y="${by + 2}" width="${bw.toFixed(1)}" height="${ROW_H - 5}" fill="${COLORS[w] ?? '#57606a'}"/>`);
      let label = fmtValue(v);
      if (w === 'project') {
        // The ratio to uws-raw (the ceiling), to uws-sqlite (the floor of the guarantees) and to
        // any peer a goal names; the rest are in the table.
        const named = new Set(['uws-raw', 'uws-sqlite', ...goals.map((x) => x.g.peer).filter(Boolean)]);
        const rs = Object.entries(r.ratios).filter(([p]) => named.has(p)).map(([p, x]) => `${x.toFixed(2)}x ${p}`);
        if (rs.length) label += `  (${rs.join(', ')})`;
      }
      parts.push(`<text x="${(BAR_X + bw + 6).toFixed(1)}" y="${by + 13}" class="v">${esc(label)}</text>`);
    });
    const bottom = y + who.length * ROW_H;
    let extra = 0;
    for (const [k, { g, v, ok }] of goals.entries()) {
      if (v === undefined) continue;
      extra = k;
      const gx = BAR_X + scale(v);
      const color = ok === undefined ? '#57606a' : ok ? '#1a7f37' : '#cf222e';
      parts.push(`<line x1="${gx.toFixed(1)}" y1="${top - 2}" x2="${gx.toFixed(1)}" y2="${bottom}" stroke="${color}" stroke-width="2" stroke-dasharray="5,3"/>`);
      parts.push(`<text x="${gx.toFixed(1)}" y="${bottom + 11 + k * 11}" class="g" fill="${color}" text-anchor="middle">${esc(g.label)}</text>`);
    }
    y = bottom + PANEL_PAD - 10 + extra * 11;
  }
  const m = report.machine;
  const header = `Secret Panthers bench (${report.mode}) · ${report.started_at.slice(0, 16).replace('T', ' ')} UTC · node ${report.node} · ${m.cpus} CPUs ${m.pinned ? 'pinned' : 'NOT pinned'}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" viewBox="0 0 ${W} ${y + 10}" font-family="sans-serif">`,
    '<style>.t{font-size:15px;font-weight:bold}.h{font-size:13px;font-weight:bold}.u{font-size:11px;font-weight:normal;fill:#57606a}.l{font-size:12px}.v{font-size:11px}.g{font-size:10px}</style>',
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" class="t">${esc(header)}</text>`,
    `<text x="10" y="38" class="u">bars: medians of interleaved rounds; ratios: project / peer, median of per-round ratios; dashed: the goal (green met, red missed)</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** Writes the SVG beside the results file (latest.json -> latest.svg). */
export function writeSvg(resultsFile: string, report: BenchReport): string {
  const file = path.join(path.dirname(resultsFile), `${path.basename(resultsFile, path.extname(resultsFile))}.svg`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderSvg(report));
  return file;
}
