export * from './undo.js';
export * from './wait.js';
export * from './seize.js';
export * from './site.js';
export * from './remote.js';
export * from './frame.js';
export * from './interrupt.js';
export * from './enter-call.js';
