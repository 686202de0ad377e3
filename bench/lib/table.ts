import type { MetricResult } from './results.js';

function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 100_000) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The terminal table: one line per metric and peer (scenario, metric, project, peer, ratio). */
export function renderTable(rows: readonly MetricResult[]): string {
  const lines: string[][] = [['scenario', 'metric', 'unit', 'project', 'peer', 'peer value', 'ratio', 'note']];
  for (const r of rows) {
    const peerNames = Object.keys(r.peers);
    const projectCell = r.project === null ? 'n/a' : fmt(r.project);
    const note = r.note ?? '';
    if (peerNames.length === 0) {
      lines.push([r.name, r.metric, r.unit, projectCell, '-', '-', '-', note]);
      continue;
    }
    peerNames.forEach((p, i) => {
      const ratio = r.ratios[p];
      const ratioCell = ratio === undefined ? '-' : `${ratio.toFixed(2)}x`;
      lines.push([
        i === 0 ? r.name : '',
        i === 0 ? r.metric : '',
        i === 0 ? r.unit : '',
        i === 0 ? projectCell : '',
        p,
        fmt(r.peers[p]),
        ratioCell,
        i === 0 ? note : '',
      ]);
    });
  }
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  const out = lines.map((l) => l.map((cell, c) => (c === l.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd());
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  ').slice(0, 120));
  return out.join('\n');
}
