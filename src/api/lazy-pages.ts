// `ckpt lazy-pages`: the server and guard processes a lazy restore starts (restore/lazy/).
export { runLazyPages } from '../restore/lazy/main.js';
