import { malformed, readProcText } from './procfs.js';

/** One line of /proc/PID/mountinfo. */
export interface MountEntry {
  mountId: number;
  parentId: number;
  major: number;
  minor: number;
  /** Root of the mount within its filesystem (differs from '/' for bind mounts). */
  root: string;
  mountPoint: string;
  /** Per-mount options: rw, nosuid, relatime … */
  options: string;
  /** "shared:N", "master:N", "propagate_from:N", "unbindable". */
  optionalFields: string[];
  fsType: string;
  source: string;
  /** Per-superblock options. */
  superOptions: string;
}

/** The kernel writes space, tab, newline and backslash in names as \ooo. */
export function unescapeOctal(s: string): string {
  return s.includes('\\') ? s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) : s;
}

function parseLine(line: string): MountEntry {
  const f = line.split(' ');
  const dash = f.indexOf('-', 6);
  const devId = /^(\d+):(\d+)$/.exec(f[2] ?? '');
  if (f.length < 10 || dash < 0 || devId === null || f.length < dash + 4) {
    throw malformed('/proc/PID/mountinfo', `unexpected line ${JSON.stringify(line)}`);
  }
  const at = (i: number): string => f[i] ?? '';
  return {
    mountId: Number(at(0)),
    parentId: Number(at(1)),
    major: Number(devId[1]),
    minor: Number(devId[2]),
    root: unescapeOctal(at(3)),
    mountPoint: unescapeOctal(at(4)),
    options: at(5),
    optionalFields: f.slice(6, dash),
    fsType: unescapeOctal(at(dash + 1)),
    source: unescapeOctal(at(dash + 2)),
    superOptions: at(dash + 3),
  };
}

export function parseMountinfo(text: string): MountEntry[] {
  return text.split('\n').filter((l) => l !== '').map(parseLine);
}

export function readMountinfo(pid: number): MountEntry[] {
  return parseMountinfo(readProcText(pid, 'mountinfo'));
}
