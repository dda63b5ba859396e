// The sending end of an image set on a page server: ImageWriter sends every file it
// completes (and PageWriter the page data, which is written nowhere else), then the
// inventory, which the server commits only once every file it lists has arrived whole.
// Nothing waits for an answer before the commit: the data streams at the socket's pace.
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import type { FileType } from '../layout.js';
import { Channel, FRAME, MAX_PAYLOAD } from './channel.js';

/** Data frames carry a 4-byte file id before the bytes. */
const DATA_MAX = MAX_PAYLOAD - 4;

export const CommitAnswer = z.object({ files: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() });

/** One file of a set being sent; appends only. */
export class RemoteFile {
  private size = 0;
  private readonly id: Buffer;
  constructor(private readonly set: RemoteSet, id: number) {
    this.id = Buffer.alloc(4);
    this.id.writeUInt32LE(id);
  }

  write(data: Uint8Array): void {
    for (let off = 0; off < data.length; off += DATA_MAX) {
      this.set.channel.send(FRAME.DATA, [this.id, data.subarray(off, Math.min(data.length, off + DATA_MAX))]);
    }
    this.size += data.length;
  }

  close(): void {
    this.set.channel.sendJson(FRAME.CLOSE, { id: this.id.readUInt32LE(0), size: this.size });
  }
}

export class RemoteSet {
  readonly channel: Channel;
  private nextId = 1;
  private state: 'open' | 'committed' | 'aborted' = 'open';

  /** Starts a set in the server's directory, or in `dir` under it (one plain name). */
  constructor(channel: Channel, dir = '') {
    this.channel = channel;
    channel.sendJson(FRAME.BEGIN, { dir });
  }

  get peer(): string {
    return this.channel.peer;
  }

  open(name: string, type: FileType): RemoteFile {
    if (this.state !== 'open') throw new CkptError('USAGE', `Cannot send ${name} to ${this.peer}: the set is ${this.state}`);
    const id = this.nextId++;
    this.channel.sendJson(FRAME.FILE, { id, name, type });
    return new RemoteFile(this, id);
  }

  /** Sends a whole small file. */
  put(name: string, type: FileType, bytes: Uint8Array): void {
    const f = this.open(name, type);
    f.write(bytes);
    f.close();
  }

  /** Sends the inventory and waits until the server has committed the set. */
  commit(inventory: Uint8Array): z.infer<typeof CommitAnswer> {
    this.channel.send(FRAME.COMMIT, inventory);
    const answer = this.channel.expectOk(`commit the images on ${this.peer}`);
    this.state = 'committed';
    const parsed = CommitAnswer.safeParse(JSON.parse(answer.toString('utf8') || '{}'));
    return parsed.success ? parsed.data : { files: 0, bytes: 0 };
  }

  /** Tells the server to drop what it has of the set; never throws (a failure path). */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    try {
      this.channel.send(FRAME.ABORT);
    } catch {
      // the connection is gone: the server drops an uncommitted set by itself
    }
  }
}
