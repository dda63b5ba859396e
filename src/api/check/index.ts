/**
 * `ckpt check`: what this kernel and our privileges allow. Each probe is small and
 * independent; a probe that throws reports its error message as the reason.
 */
import { CkptError } from '../../common/errors.js';
import { ProbeContext } from './context.js';
import { capProbes } from './caps.js';
import { clone3Probe, pagemapScanProbe, tcpRepairProbe, timeNsProbe, userfaultfdProbe, vdsoProbe } from './kernel-probes.js';
import { kcmpProbe, pidfdProbe, ptraceProbe, rseqProbe, vmReadProbe } from './process-probes.js';
import type { Probe, ProbeResult } from './types.js';

export type { ProbeResult } from './types.js';

const PROBES: readonly Probe[] = [
  ptraceProbe,
  vmReadProbe,
  pidfdProbe,
  kcmpProbe,
  clone3Probe,
  rseqProbe,
  userfaultfdProbe,
  pagemapScanProbe,
  tcpRepairProbe,
  timeNsProbe,
  vdsoProbe,
  ...capProbes,
];

export function probeNames(): string[] {
  return PROBES.map((p) => p.name);
}

function runOne(p: Probe, ctx: ProbeContext): ProbeResult {
  const base = { name: p.name, disables: p.disables, required: p.required };
  try {
    return { ...base, ok: true, detail: p.run(ctx) };
  } catch (e) {
    return { ...base, ok: false, detail: e instanceof Error ? e.message : String(e) };
  }
}

export interface CheckOptions {
  /** Run only this probe; unknown names are a USAGE error listing the known ones. */
  feature?: string;
}

export interface CheckReport {
  results: ProbeResult[];
  /** No required probe failed; with `feature`, that probe succeeded (required or not). */
  ok: boolean;
}

export function check(opts: CheckOptions = {}): CheckReport {
  let probes = PROBES;
  if (opts.feature !== undefined) {
    probes = PROBES.filter((p) => p.name === opts.feature);
    if (probes.length === 0) {
      throw new CkptError('USAGE', `Cannot check feature "${opts.feature}": unknown; known features: ${probeNames().join(', ')}`);
    }
  }
  const ctx = new ProbeContext();
  try {
    const results = probes.map((p) => runOne(p, ctx));
    const single = opts.feature !== undefined;
    return { results, ok: results.every((r) => r.ok || (!r.required && !single)) };
  } finally {
    ctx.dispose();
  }
}
