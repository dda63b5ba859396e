/**
 * --display-stats: CRIU's "Displaying dump stats" / "Displaying restore stats" lines on
 * stdout, with ckpt's numbers (times in microseconds, as CRIU prints them). ckpt copies
 * pages straight from the process into the page files, so its memory dump and memory
 * write are one span: both lines show it.
 */
import type { DumpResult, RestoreResult } from '../api/index.js';
import { println } from './output.js';

const us = (ms: number) => `${Math.round(ms * 1000)} us`;
const count = (n: number) => `${n} (0x${n.toString(16)})`;

export function printDumpStats(r: DumpResult): void {
  println('Displaying dump stats:');
  println(`Freezing time: ${us(r.freezingMs)}`);
  println(`Frozen time: ${us(r.frozenMs)}`);
  println(`Memory dump time: ${us(r.memoryMs)}`);
  println(`Memory write time: ${us(r.memoryMs)}`);
  println(`Memory pages written: ${count(r.pages)}`);
  println(`Processes: ${r.processes}`);
  println(`Total time: ${us(r.totalMs)}`);
}

export function printRestoreStats(r: RestoreResult): void {
  println('Displaying restore stats:');
  println(`Pages restored: ${count(r.pages)}`);
  println(`Processes: ${r.processes}`);
  println(`Restore time: ${us(r.totalMs)}`);
}
