/**
 * The end of a migration: a two-phase commit between the source, whose tree is frozen,
 * and the destination, which has restored it, so that at most one copy runs and a copy
 * is never lost (docs/architecture.md, "Live migration", says the protocol and its window):
 *
 *   S → D  RESTORE {dir, id}     D restores, up to the tree built and frozen (not let go)
 *                                (post-copy, with `pages`: D reads the final set from S meanwhile, READ frames)
 *   D → S  OK {ready, pid}       S kills its tree (after this, only D's copy exists)
 *   S → D  GO                    D lets its tree run
 *   D → S  OK {pid, …}           (informational)
 *
 * A connection that breaks before S has READY: S resumes its tree and tells D so
 * (RESOLVE "resumed", on the connection or a new one); D kills its copy on that word, or
 * once the resolve window ends without one it leaves its copy stopped (it cannot tell a
 * READY lost from a GO lost). A connection that breaks after S killed its tree: S says
 * RESOLVE "killed" on new connections until D answers or the window ends; D lets its copy
 * run on that word, or leaves it stopped. Either way no copy runs while another may, and
 * the copy that survives a lost word is a stopped one, never none.
 */
import { z } from 'zod';
import { CkptError } from '../common/errors.js';
import { FRAME, type Channel, type FileServer, type Frame } from '../images/index.js';
import { endSession } from '../dump/page-server.js';
import { SHUT, setSocketTimeouts, shutdownSocket } from '../sys/inet.js';
import { sleepSync } from '../infect/index.js';
import { acceptAuthenticated } from './page-server.js';

/** How long the source waits for the destination's restore (its tree frozen meanwhile). */
export const RESTORE_TIMEOUT_MS = 120_000;
/** How long the destination waits for GO after READY (the source only kills its tree in between). */
export const GO_TIMEOUT_MS = 30_000;
/** Default window, both sides, in which a broken connection's outcome is still told and heard. */
export const RESOLVE_TIMEOUT_MS = 60_000;

export const RestoreRequest = z.object({
  dir: z.literal('final'), id: z.string().regex(/^[0-9a-f]{16}$/),
  /**
   * Post-copy: the final set is not on the destination but on the source, which answers
   * READs of it on this connection until its tree is dead, then on address:port (a
   * listener of its own) until the destination has every page.
   */
  pages: z.object({ address: z.string().max(64), port: z.number().int().min(1).max(65535) }).optional(),
});
export const Ready = z.object({ ready: z.literal(true), pid: z.number().int().positive(), restoreMs: z.number().nonnegative() });
/** The destination's last word: its tree runs (the answer to GO, or to RESOLVE "killed"). */
export const Running = z.object({ pid: z.number().int().positive(), restoreMs: z.number().nonnegative(), runMs: z.number().nonnegative() });
const Resolve = z.object({ id: z.string(), outcome: z.enum(['killed', 'resumed']) });
export type Outcome = z.infer<typeof Resolve>['outcome'];

/**
 * Faults for the tests (CKPT_MIGRATE_FAULT), each one a lost message: `drop-ready` (the
 * destination shuts the connection instead of sending READY), `drop-go` (the source shuts
 * it instead of sending GO), `drop-go-quiet` (as drop-go, and the source never reconnects).
 */
export function fault(name: 'drop-ready' | 'drop-go' | 'drop-go-quiet'): boolean {
  return process.env['CKPT_MIGRATE_FAULT'] === name;
}

/** Cuts a connection both ways, as a network failure would (the fd stays ours until closed). */
export function cut(ch: Channel): void {
  try {
    shutdownSocket(ch.fd, SHUT.RDWR);
  } catch {
    // gone already
  }
}

function parseAnswer<S extends z.ZodType>(ch: Channel, schema: S, payload: Buffer): z.output<S> {
  const text = payload.toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const r = schema.safeParse(v);
  if (!r.success) throw new CkptError('NETWORK', `Cannot migrate to ${ch.peer}: it answered ${text.slice(0, 200)}`);
  return r.data;
}

/**
 * The source: asks for the restore and waits for READY. `refused` is true when the
 * destination answered ERROR (it failed, and killed what it built): nothing to resolve.
 */
export function askRestore(ch: Channel, req: z.infer<typeof RestoreRequest> & { files?: FileServer }): z.infer<typeof Ready> {
  setSocketTimeouts(ch.fd, RESTORE_TIMEOUT_MS);
  const { files, ...request } = req;
  ch.sendJson(FRAME.RESTORE, request);
  const f = answerReads(ch, files);
  if (f.type === FRAME.ERROR) throw new RefusedError(`Cannot restore on ${ch.peer}: it says: ${f.payload.toString('utf8').slice(0, 1000)}`);
  if (f.type !== FRAME.OK) throw new CkptError('NETWORK', `Cannot restore on ${ch.peer}: it answered with frame ${f.type}`);
  return parseAnswer(ch, Ready, f.payload);
}

/** The destination said ERROR to the restore: it holds nothing. */
export class RefusedError extends CkptError {
  constructor(message: string) {
    super('NETWORK', message);
  }
}

/** The source, its tree killed: GO, and the destination's word that its tree runs. */
export function sendGo(ch: Channel, files?: FileServer): z.infer<typeof Running> {
  setSocketTimeouts(ch.fd, GO_TIMEOUT_MS);
  if (fault('drop-go') || fault('drop-go-quiet')) cut(ch);
  ch.send(FRAME.GO);
  const f = answerReads(ch, files);
  if (f.type === FRAME.ERROR) throw new CkptError('NETWORK', `Cannot let the tree run on ${ch.peer}: it says: ${f.payload.toString('utf8').slice(0, 1000)}`);
  if (f.type !== FRAME.OK) throw new CkptError('NETWORK', `Cannot let the tree run on ${ch.peer}: it answered with frame ${f.type}`);
  return parseAnswer(ch, Running, f.payload);
}

/** The next frame that is not a READ (post-copy: the destination's restore reads the final set meanwhile, answered from `files`). */
function answerReads(ch: Channel, files: FileServer | undefined): Frame {
  for (;;) {
    const f = ch.receive();
    if (f.type !== FRAME.READ || !files) return f;
    files.answer(ch, f);
  }
}

/**
 * The source tells how it ended: first on `ch` if it still carries frames, then on new
 * connections until one is answered or `timeoutMs` is over. Returns the answer's payload
 * (for "killed": Running), or throws the last failure.
 */
export function tellOutcome(ch: Channel, args: { id: string; outcome: Outcome; reconnect: () => Channel; timeoutMs: number }): Buffer {
  const msg = { id: args.id, outcome: args.outcome };
  const ask = (c: Channel): Buffer => {
    setSocketTimeouts(c.fd, 5000);
    c.sendJson(FRAME.RESOLVE, msg);
    // The READY of a restore that was slower than our wait may come first.
    for (;;) {
      const f = c.receive();
      if (f.type === FRAME.ERROR) throw new RefusedError(`Cannot tell ${c.peer} how the migration ended: it says: ${f.payload.toString('utf8').slice(0, 1000)}`);
      if (f.type === FRAME.OK && !f.payload.toString('utf8').includes('"ready":true')) return Buffer.from(f.payload);
    }
  };
  if (!fault('drop-go-quiet')) {
    try {
      return ask(ch);
    } catch (e) {
      if (e instanceof RefusedError) throw e;
    }
  }
  const until = performance.now() + args.timeoutMs;
  let last: unknown = new CkptError('NETWORK', `Cannot tell ${ch.peer} how the migration ended: no attempt was made`);
  while (!fault('drop-go-quiet') && performance.now() < until) {
    let c: Channel | undefined;
    try {
      c = args.reconnect();
      return ask(c);
    } catch (e) {
      if (e instanceof RefusedError) throw e;
      last = e;
      sleepSync(500);
    } finally {
      if (c) endSession(c);
    }
  }
  throw last;
}

/**
 * The destination, its tree built and frozen: READY, then GO on the same connection, or
 * (the connection broken, or a RESOLVE on it) the source's word on a new one within
 * `resolveMs`. 'run': let the tree go; 'stop': no word, leave it stopped; a throw: the
 * source resumed its tree (kill this copy).
 */
export function awaitGo(ch: Channel, args: { ready: z.infer<typeof Ready>; id: string; listener: number; token: Buffer; resolveMs: number; log: (l: string) => void }): 'run' | 'stop' {
  let outcome: Outcome | undefined;
  try {
    if (fault('drop-ready')) cut(ch);
    ch.sendJson(FRAME.OK, args.ready);
    setSocketTimeouts(ch.fd, GO_TIMEOUT_MS);
    const f = ch.receive();
    if (f.type === FRAME.GO) return 'run';
    if (f.type !== FRAME.RESOLVE) throw new CkptError('NETWORK', `Cannot migrate from ${ch.peer}: frame ${f.type} instead of GO`);
    outcome = resolution(ch, { payload: f.payload, id: args.id });
  } catch (e) {
    args.log(`in doubt: ${(e as Error).message}; waiting up to ${Math.round(args.resolveMs / 1000)} s for the source to say whether its tree died`);
  }
  outcome ??= awaitResolve(args);
  if (outcome === 'killed') return 'run';
  if (outcome === 'resumed') throw new CkptError('NETWORK', `Cannot migrate from ${ch.peer}: the source resumed its tree after the connection broke (the copy here is killed)`);
  return 'stop';
}

/** A RESOLVE frame's outcome, answered OK (the running tree's details are not known yet: the answer is an acknowledgement). */
function resolution(ch: Channel, args: { payload: Buffer; id: string }): Outcome {
  const r = parseAnswer(ch, Resolve, args.payload);
  if (r.id !== args.id) {
    ch.send(FRAME.ERROR, Buffer.from(`Cannot resolve migration ${r.id}: this destination holds migration ${args.id}`));
    throw new CkptError('NETWORK', `Cannot resolve the migration: ${ch.peer} named another one (${r.id})`);
  }
  ch.sendJson(FRAME.OK, { resolved: r.outcome });
  return r.outcome;
}

/** Accepts the source's new connections until one says how it ended, or the window is over (undefined). */
function awaitResolve(args: { id: string; listener: number; token: Buffer; resolveMs: number; log: (l: string) => void }): Outcome | undefined {
  const until = performance.now() + args.resolveMs;
  while (performance.now() < until) {
    setSocketTimeouts(args.listener, Math.max(1, Math.ceil(until - performance.now())));
    let c: Channel;
    try {
      c = acceptAuthenticated(args.listener, { token: args.token, timeoutMs: 5000, log: args.log });
    } catch {
      return undefined; // the window is over (accept timed out)
    }
    try {
      const f = c.receive();
      if (f.type === FRAME.RESOLVE) return resolution(c, { payload: f.payload, id: args.id });
      args.log(`in doubt: ${c.peer} sent frame ${f.type}, not RESOLVE`);
    } catch (e) {
      args.log(`in doubt: ${c.peer}: ${(e as Error).message}`);
    } finally {
      c.close();
    }
  }
  return undefined;
}
