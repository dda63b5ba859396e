/**
 * The resource modules of a process and the phase of restore each belongs to. Dump
 * runs them in this order (seccomp first: it refuses processes our injected syscalls
 * could kill); restore runs each phase at its place around memory and files. The
 * orchestrators know nothing about any one module. See resources/process/index.ts
 * for why each module sits in its phase.
 */
import { files } from './files/index.js';
import { ctty } from './files/ctty.js';
import { semUndo } from './ipc/undo.js';
import { PROCESS_RESOURCES as PROCESS, PROCESS_RESTORE_PHASE } from './process/index.js';
import type { Resource } from './types.js';

export type Phase = 'before-memory' | 'after-memory' | 'files' | 'after-files' | 'finish' | 'last';
export const PHASES: readonly Phase[] = ['before-memory', 'after-memory', 'files', 'after-files', 'finish', 'last'];

export interface Registered {
  module: Resource<unknown>;
  phase: Phase;
}

export const RESOURCES: readonly Registered[] = [
  ...PROCESS.map((module) => ({ module, phase: PROCESS_RESTORE_PHASE[module.name] as Phase })),
  // A session leader takes its terminal back before its children are cloned (they inherit it).
  { module: ctty as Resource<unknown>, phase: 'before-memory' },
  { module: files as Resource<unknown>, phase: 'files' },
  // Nothing to restore: the dump refuses a process with a SEM_UNDO adjustment.
  { module: semUndo as Resource<unknown>, phase: 'last' },
];
