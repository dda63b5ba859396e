// The ckpt library: what TypeScript users import. A plain list of re-exports.
export { CkptError, isCkptError, type ErrorCode } from '../common/errors.js';
export { check, probeNames, type CheckOptions, type CheckReport, type ProbeResult } from './check/index.js';
export { processTree, treePids, type ProcessNode } from './ps.js';
export { sharing, type SharingReport, type ProcessKind, type FdRef } from './sharing.js';
export { dump, imagesTarget, preDump, replaceImages, type DumpOptions, type DumpResult, type DumpEvent, type ImagesTarget, type PreDumpOptions, type PreDumpResult } from './dump.js';
export { restore, type RestoreOptions, type RestoreResult, type RestoreEvent } from './restore.js';
export { show, type ShowPagemap, type ShowReport, type ShowProcess, type ShowThread, type ShowVma } from './show.js';
export { waitForExit, type ExitStatus, type WaitOptions } from './wait.js';
