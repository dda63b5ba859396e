// `ckpt restore` alone: the CLI imports this, not index.ts, so a restore does not load dump, show or check.
export { restore, type RestoreOptions, type RestoreResult, type RestoreEvent } from '../restore/restore.js';
export { waitForExit, type ExitStatus, type WaitOptions } from './wait.js';
export { lazyPagesCommand } from '../restore/lazy/client.js';
