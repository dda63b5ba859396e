/**
 * /proc/PID/numa_maps: one line per memory area, "ADDR POLICY key=value...". The policy
 * is the area's own (mbind), or where it has none the policy of the thread whose file
 * it is ("default" when that has none either). So only with a default thread policy
 * does "default" tell an area without a policy of its own; callers read each policy
 * exactly with get_mempolicy(MPOL_F_ADDR).
 */
import { malformed } from './procfs.js';

/** Start addresses of the areas whose policy is not "default" (`all`: of every area). */
export function parseNumaMapsPolicied(file: string, text: string, opts: { all?: boolean } = {}): bigint[] {
  const out: bigint[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^([0-9a-f]+) (\S+)/.exec(line);
    if (!m) throw malformed(file, `expected "ADDR POLICY ...", got ${JSON.stringify(line.slice(0, 80))}`);
    if (opts.all || m[2] !== 'default') out.push(BigInt(`0x${m[1]}`));
  }
  return out;
}
