/**
 * siginfo_t (128 bytes). We decode the common head and keep the raw bytes, since
 * restoring a pending signal (rt_tgsigqueueinfo) needs the exact original.
 */
export const SIGINFO_SIZE = 128;

export interface Siginfo {
  signo: number;
  errno: number;
  code: number;
  /** si_pid / si_uid for signals sent by kill/sigqueue (code <= 0). */
  pid: number;
  uid: number;
  raw: Buffer;
}

export function decodeSiginfo(buf: Buffer): Siginfo {
  if (buf.length < SIGINFO_SIZE) throw new RangeError(`siginfo_t needs ${SIGINFO_SIZE} bytes, got ${buf.length}`);
  return {
    signo: buf.readInt32LE(0),
    errno: buf.readInt32LE(4),
    code: buf.readInt32LE(8),
    pid: buf.readInt32LE(16),
    uid: buf.readUInt32LE(20),
    raw: Buffer.from(buf.subarray(0, SIGINFO_SIZE)),
  };
}

export function encodeSiginfo(info: Pick<Siginfo, 'raw'>): Buffer {
  if (info.raw.length !== SIGINFO_SIZE) throw new RangeError(`siginfo_t must be ${SIGINFO_SIZE} bytes`);
  return Buffer.from(info.raw);
}
