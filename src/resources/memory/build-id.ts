/**
 * The GNU build ID of an ELF file (NT_GNU_BUILD_ID): a hash the linker writes over the
 * linked output, so a rebuilt or upgraded library has another. Reading it costs a few
 * KiB where a SHA-1 of the contents reads the whole file (node's binary: ~100 MiB at
 * every dump and every restore). CRIU identifies mapped ELF files the same way.
 */
import { readSync } from 'node:fs';

const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;
const MAX_NOTES = 64 * 1024;

function readAt(fd: number, len: number, pos: number): Buffer | undefined {
  const buf = Buffer.alloc(len);
  return readSync(fd, buf, 0, len, pos) === len ? buf : undefined;
}

/** The build ID as hex, or undefined (not a little-endian ELF64 file, or no build ID note). */
export function buildIdOf(fd: number): string | undefined {
  const eh = readAt(fd, 64, 0);
  // \x7fELF, ELFCLASS64, ELFDATA2LSB
  if (!eh || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined;
  const phoff = Number(eh.readBigUInt64LE(0x20));
  const phentsize = eh.readUInt16LE(0x36);
  const phnum = eh.readUInt16LE(0x38);
  if (phentsize < 56 || phnum === 0 || phnum > 4096) return undefined;
  const ph = readAt(fd, phentsize * phnum, phoff);
  if (!ph) return undefined;
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (ph.readUInt32LE(at) !== PT_NOTE) continue;
    const size = Number(ph.readBigUInt64LE(at + 0x20));
    const notes = size > 0 && size <= MAX_NOTES ? readAt(fd, size, Number(ph.readBigUInt64LE(at + 0x08))) : undefined;
    const id = notes && findBuildId(notes);
    if (id) return id;
  }
  return undefined;
}

const align4 = (n: number) => (n + 3) & ~3;

function findBuildId(notes: Buffer): string | undefined {
  for (let at = 0; at + 12 <= notes.length; ) {
    const namesz = notes.readUInt32LE(at);
    const descsz = notes.readUInt32LE(at + 4);
    const type = notes.readUInt32LE(at + 8);
    const name = at + 12;
    const desc = name + align4(namesz);
    if (desc + descsz > notes.length) return undefined;
    if (type === NT_GNU_BUILD_ID && namesz === 4 && notes.toString('latin1', name, name + 3) === 'GNU' && descsz >= 8 && descsz <= 64) {
      return notes.toString('hex', desc, desc + descsz);
    }
    at = desc + align4(descsz);
  }
  return undefined;
}
