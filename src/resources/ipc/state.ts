/**
 * The saved shape of the System V message queues and semaphore sets a dumped tree uses
 * (see ipc/index.ts for which ones). They belong to the IPC namespace, not to one
 * process, so they are saved once per image set, in image `sysvipc`.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';

const perm = {
  /** IPC key (0 = IPC_PRIVATE). */
  key: z.number().int().min(-0x80000000).max(0x7fffffff),
  id: z.number().int().min(0).max(0x7fffffff),
  /** Permission bits (perms & 0777). */
  mode: z.number().int().min(0).max(0o777),
  uid: z.number().int().min(0).max(0xffffffff),
  gid: z.number().int().min(0).max(0xffffffff),
};

export const SysvMsgQueue = z.object({
  ...perm,
  qbytes: z.number().int().min(0).max(0x7fffffff),
  /** Each message's type and length, oldest first; their bytes are blob `blob` concatenated. */
  messages: z.array(z.object({ type: zBig.refine((t) => t > 0n && t < 1n << 63n, 'a message type is a positive long'), size: z.number().int().min(0).max(0x7fffffff) })).max(1 << 20),
  blob: z.string().regex(/^sysv-msg-\d+$/).optional(),
});
export type SysvMsgQueue = z.infer<typeof SysvMsgQueue>;

export const SysvSemSet = z.object({
  ...perm,
  values: z.array(z.number().int().min(0).max(32767)).min(1).max(65536),
});
export type SysvSemSet = z.infer<typeof SysvSemSet>;

export const SysvIpcState = z.object({ msg: z.array(SysvMsgQueue).max(32768), sem: z.array(SysvSemSet).max(32768) });
export type SysvIpcState = z.infer<typeof SysvIpcState>;

export const IPC_IMAGE = { name: 'sysvipc', kind: 'sysvipc', schema: SysvIpcState };
