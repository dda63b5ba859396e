/**
 * The process's cgroups (/proc/PID/cgroup: "id:controllers:path" per hierarchy, "0::"
 * the v2 one). Restored by moving the process into the same cgroups before its memory
 * is filled, so that its pages are charged there and it lives under the same limits,
 * and so that a service restored from a login shell is not killed with that shell's
 * session scope. Properties (limits) are not saved: the cgroups must exist, and one
 * missing fails the restore naming it; `--manage-cgroups=ignore` (CRIU's) leaves the
 * tree in the restorer's cgroups instead. Refused at dump: threads in other cgroups
 * than their process (threaded cgroups).
 *
 * Images are untrusted: each path must be a plain absolute path, joined to the
 * hierarchy's mount point here, and for images of another user (ctx.openAs) the
 * cgroup.procs written must be that user's (a delegated subtree): no image moves a
 * process out of its owner's limits.
 */
import { statSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { readMountinfo } from '../../proc/index.js';
import { readProcText } from '../../proc/procfs.js';
import type { Resource } from '../types.js';

const CgroupPath = z.string().max(4096).regex(/^\/(?:[^/\0]+(?:\/[^/\0]+)*)?$/).refine((p) => !p.split('/').some((c) => c === '.' || c === '..'), 'no . or .. components');

export const cgroupSchema = z.object({
  /** One per hierarchy: "0:" for v2, "N:cpu,cpuacct" or "N:name=systemd" for v1. */
  hierarchies: z.array(z.object({ key: z.string().max(256).regex(/^\d+:[\w,=.-]*$/), path: CgroupPath })).max(64),
}).default({ hierarchies: [] });
export type CgroupState = z.infer<typeof cgroupSchema>;

/** Hierarchies of /proc/PID/cgroup text, keyed "id:controllers". */
function parse(text: string): { key: string; path: string }[] {
  return text.split('\n').filter(Boolean).map((l) => {
    const [id = '', controllers = '', ...rest] = l.split(':');
    return { key: `${id}:${controllers}`, path: rest.join(':') };
  });
}

/** Where hierarchy `key` is mounted here (the cgroup2 mount for "0:"). */
function mountOf(key: string): string | undefined {
  const controllers = key.slice(key.indexOf(':') + 1);
  const mounts = readMountinfo(process.pid).filter((m) => m.root === '/');
  if (controllers === '') return mounts.find((m) => m.fsType === 'cgroup2')?.mountPoint;
  const want = controllers.split(',');
  return mounts.find((m) => m.fsType === 'cgroup' && want.every((c) => m.superOptions.split(',').includes(c)))?.mountPoint;
}

export const cgroup: Resource<CgroupState> = {
  name: 'cgroup',
  schema: cgroupSchema,
  dump(ctx) {
    const text = readProcText(ctx.pid, 'cgroup');
    for (const tid of ctx.proc.tids) {
      if (tid !== ctx.pid && readProcText(ctx.pid, `task/${tid}/cgroup`) !== text) {
        throw new CkptError('UNSUPPORTED', `Cannot dump thread ${tid} of process ${ctx.pid}: it is in another cgroup than its process (a threaded cgroup), which is not saved`);
      }
    }
    return { hierarchies: parse(text) };
  },
  restore(ctx, s) {
    if (ctx.options.manageCgroups === 'ignore') return;
    const ours = new Map(parse(readProcText(process.pid, 'cgroup')).map((h) => [h.key, h.path]));
    for (const h of s.hierarchies) {
      const mine = ours.get(h.key);
      if (mine === h.path) continue;
      const at = mine === undefined ? undefined : mountOf(h.key);
      if (at === undefined) {
        throw new CkptError('FILE_CHANGED', `Cannot restore process ${ctx.pid}: its cgroup hierarchy ${h.key} is not mounted here (pass --manage-cgroups=ignore to leave it in ckpt's cgroups)`);
      }
      const procs = `${at}${h.path === '/' ? '' : h.path}/cgroup.procs`;
      let owner: number;
      try {
        owner = statSync(procs).uid;
      } catch {
        throw new CkptError('FILE_CHANGED', `Cannot restore process ${ctx.pid}: its cgroup ${h.path} (${h.key}) does not exist here (create it, or pass --manage-cgroups=ignore to leave it in ckpt's, ${mine})`);
      }
      if (ctx.openAs && owner !== ctx.openAs.fsuid) {
        throw new CkptError('PERMISSION', `Cannot restore process ${ctx.pid}: its cgroup ${h.path} (${h.key}) is not delegated to the images' owner (uid ${ctx.openAs.fsuid}); restore with --manage-cgroups=ignore or --trust-images`);
      }
      try {
        writeFileSync(procs, String(ctx.pid));
      } catch (e) {
        throw new CkptError('PERMISSION', `Cannot restore process ${ctx.pid} into its cgroup ${h.path} (${h.key}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
      }
    }
  },
};
