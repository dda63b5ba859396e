// `ckpt dump` alone: the CLI imports this, not index.ts, so a dump does not load restore, show or check.
export { dump, type DumpOptions, type DumpResult, type DumpEvent } from '../dump/dump.js';
export { imagesTarget, replaceImages, type ImagesTarget } from './replace.js';
export { preDump, type PreDumpOptions, type PreDumpResult } from '../dump/predump.js';
