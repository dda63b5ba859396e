// Run as a script (ckpt used as a library): node entry.js serve DIR | guard PID.
import { runLazyPages } from './main.js';

process.exitCode = runLazyPages(process.argv.slice(2));
