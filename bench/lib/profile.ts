import fs from 'node:fs';
import path from 'node:path';

/**
 * `npm run bench -- --profile`: the project runs under `node --cpu-prof` (a profile per server
 * process, written when it exits), and after each scenario the profiles are summed into the
 * functions that spent the most self time, grouped also by source file. Where the time of a
 * route or a token goes, without leaving the harness.
 */
interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[] }

/** node flags of a profiled server (not allowed in NODE_OPTIONS: they go on the command line). */
export function profileNodeArgs(dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const u = url.replace(/^file:\/\//, '');
  const i = u.lastIndexOf('/node_modules/');
  if (i >= 0) return u.slice(i + 14);
  const d = u.lastIndexOf('/dist/');
  return d >= 0 ? u.slice(d + 6) : u.startsWith('node:') ? u : path.basename(u);
}

export interface ProfileSummary {
  samples: number;
  top: { name: string; pct: number }[];
  byFile: { file: string; pct: number }[];
}

/** Self time of every function and file over all profiles in dir (percent of all samples). */
export function summarizeProfiles(dir: string, topN = 30): ProfileSummary | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
    for (const n of p.nodes) {
      const hits = n.hitCount ?? 0;
      const cf = n.callFrame;
      // Idle is the process waiting: the percentages are of the time it was busy.
      if (!hits || cf.functionName === '(idle)') continue;
      const file = shortUrl(cf.url);
      const name = `${cf.functionName || '(anonymous)'} ${file}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
      byFn.set(name, (byFn.get(name) ?? 0) + hits);
      byFile.set(file, (byFile.get(file) ?? 0) + hits);
      total += hits;
    }
  }
  if (!total) return undefined;
  const sorted = <K>(m: Map<K, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    samples: total,
    top: sorted(byFn).slice(0, topN).map(([name, h]) => ({ name, pct: (100 * h) / total })),
    byFile: sorted(byFile).slice(0, 15).map(([file, h]) => ({ file, pct: (100 * h) / total })),
  };
}

export function renderProfile(s: ProfileSummary): string {
  const lines = [`${s.samples} busy samples; self time by function (% of busy):`];
  for (const t of s.top) lines.push(`  ${t.pct.toFixed(1).padStart(5)}%  ${t.name}`);
  lines.push('by file:');
  for (const t of s.byFile) lines.push(`  ${t.pct.toFixed(1).padStart(5)}%  ${t.file}`);
  return lines.join('\n');
}
