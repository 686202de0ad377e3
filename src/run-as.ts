import fs from 'node:fs';
import path from 'node:path';

/**
 * The agent image starts as root only to hand its data dir to the unprivileged user, then
 * drops to that user before anything else runs. Why: Akash mounts a persistent volume at the
 * data dir as a fresh, root-owned filesystem (akash-network/provider builds the pod with no
 * fsGroup: cluster/kube/builder/statefulset.go), which the image's `node` user could not write.
 * PANTHERS_RUN_AS is "uid:gid" (numeric, so no user database is needed) or a user name.
 * Outside root (a developer's shell, a runtime that already chose the user) it does nothing.
 */
export function dropPrivileges(runAs: string | undefined, dataDir: string): { uid: number; gid: number } | undefined {
  if (!runAs || !process.getuid || !process.setuid || !process.setgid || process.getuid() !== 0) return undefined;
  const { uid, gid } = parseRunAs(runAs.trim());
  if (uid === 0) return undefined;
  fs.mkdirSync(dataDir, { recursive: true });
  chownTree(dataDir, uid, gid, 10_000);
  process.setgroups?.([gid]);
  process.setgid(gid);
  process.setuid(uid);
  return { uid, gid };
}

function parseRunAs(runAs: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(runAs);
  if (m) return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === runAs && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`PANTHERS_RUN_AS: no user "${runAs}"`);
}

/** chown -R, bounded (the data dir holds a SQLite file, its WAL and a few keys). */
function chownTree(dir: string, uid: number, gid: number, budget: number): number {
  fs.chownSync(dir, uid, gid);
  let left = budget - 1;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (left <= 0) break;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) left = chownTree(p, uid, gid, left);
    else if (!e.isSymbolicLink()) {
      fs.chownSync(p, uid, gid);
      left--;
    }
  }
  return left;
}
