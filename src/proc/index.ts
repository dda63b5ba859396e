// proc/: pure parsers for /proc files, plus thin readers that map a vanished
// process to CkptError NO_PROCESS.
export * from './maps.js';
export * from './smaps.js';
export * from './status.js';
export * from './stat.js';
export * from './fdinfo.js';
export * from './tasks.js';
export * from './mountinfo.js';
export * from './pagemap.js';
export * from './limits.js';
export * from './auxv.js';
export { procPath, malformed, bootId, keepProcReads } from './procfs.js';
export * from './timers.js';
export * from './locks.js';
export * from './netsock.js';
export * from './igmp.js';
export * from './namespaces.js';
export * from './btf.js';
export * from './syscall.js';
export * from './numa-maps.js';
