/**
 * The `files` resource: a process's file descriptors. See registry.ts for which
 * kinds are saved and how, schema.ts for the saved shape.
 */
import type { Resource } from '../types.js';
import { dumpFiles } from './dump.js';
import { restoreFiles } from './restore.js';
import { filesSchema, type FilesState } from './schema.js';

export type { FdEntry, FilesState } from './schema.js';
export { RULES, REOPENERS, chooseRule, type FdRule } from './registry.js';

export const files: Resource<FilesState> = {
  name: 'files',
  schema: filesSchema,
  dump: dumpFiles,
  restore: restoreFiles,
};
