// The shared secret of a page server and its clients: a file only its owner can read.
import * as fs from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { tryIo } from '../io.js';

/** Fewer bytes than this cannot be a random token (16 bytes: 128 bits). */
export const MIN_TOKEN_BYTES = 16;
const MAX_TOKEN_BYTES = 4096;

/**
 * Reads the token in `file`: a regular file (not a link), owned by us, readable by no one
 * else (mode 0600 or 0400), of MIN_TOKEN_BYTES to 4 KiB (a trailing newline is not part
 * of it). Anything else is refused: a token others can read authenticates nobody.
 */
export function readToken(file: string): Buffer {
  const what = `use ${file} as the page server token`;
  const fd = tryIo(what, () => fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK));
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new CkptError('USAGE', `Cannot ${what}: not a regular file`);
    const uid = process.geteuid?.() ?? 0;
    if (st.uid !== uid) throw new CkptError('PERMISSION', `Cannot ${what}: it belongs to uid ${st.uid}, not to us (uid ${uid})`);
    if ((st.mode & 0o077) !== 0) throw new CkptError('PERMISSION', `Cannot ${what}: its mode is 0${(st.mode & 0o777).toString(8)}; others must not read it (chmod 600 ${file})`);
    if (st.size > MAX_TOKEN_BYTES) throw new CkptError('USAGE', `Cannot ${what}: ${st.size} bytes is more than a token (${MAX_TOKEN_BYTES} at most)`);
    let token = tryIo(what, () => fs.readFileSync(fd));
    while (token.length > 0 && (token[token.length - 1] === 0x0a || token[token.length - 1] === 0x0d)) token = token.subarray(0, -1);
    if (token.length < MIN_TOKEN_BYTES) {
      throw new CkptError('USAGE', `Cannot ${what}: ${token.length} bytes is too short (at least ${MIN_TOKEN_BYTES} random bytes: head -c 32 /dev/urandom > FILE)`);
    }
    return token;
  } finally {
    fs.closeSync(fd);
  }
}
