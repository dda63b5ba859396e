// The on-disk image format of a checkpoint directory (see docs/image-format.md).
// Knows nothing about processes or syscalls: resources/ decides what goes in.
export { FORMAT_VERSION, MAX_META_PAYLOAD, type FormatVersion } from './format.js';
export { zBig, zU64 } from './bigint.js';
export { crc32 } from './crc32.js';
export { createImageDir } from './image-dir.js';
export { openImage } from './io.js';
export { type FileType, type InventoryEntry, type ParentRef } from './layout.js';
export { checkedParentDir, inventoryDigest, parentRefFor, piecesIn, type PageLayer } from './chain.js';
export { PAGE_SIZE, type PageRun, type ParentRun } from './pagemap.js';
export { PageWriter, type PageWriterOptions } from './page-writer.js';
export { PageReader } from './page-reader.js';
export { ImageWriter, type ImageSpec } from './writer.js';
export { ImageReader, MAX_BLOB_READ } from './reader.js';
export { type ImageOwnership } from './owner.js';
export { Channel, channelError, FRAME, MAX_PAYLOAD, type Frame } from './remote/channel.js';
export { RemoteSet } from './remote/sender.js';
export { receiveSets, type ReceivedSet, type SessionHooks } from './remote/receiver.js';
export { readToken } from './remote/token.js';
export { FileServer, mirrorSet, RemotePages, servePageFiles, type PageSourceAddress } from './remote/page-files.js';

import type { z } from 'zod';
import type { ImageReader } from './reader.js';
import type { ImageSpec, ImageWriter } from './writer.js';

/** Function form of w.write(spec). */
export function writeImage<S extends z.ZodType>(w: ImageWriter, spec: ImageSpec<S> & { value: z.output<S> }): void {
  w.write(spec);
}

/** Function form of r.read(spec). */
export function readImage<S extends z.ZodType>(r: ImageReader, spec: ImageSpec<S>): z.output<S> {
  return r.read(spec);
}
