/**
 * zod compiles a parser for each object schema (`new Function`) the first time it parses
 * with it: worth it in a long-lived process, not in a CLI run that parses each schema once
 * or twice (~10 ms of a small dump or restore, and V8's code cache cannot keep code built
 * by eval). The schemas read the setting when they are built, so a command calls this
 * before it imports its API module. Library users keep zod's default.
 */
export async function zodForOneShot(): Promise<void> {
  const { config } = await import('zod/v4/core');
  config({ jitless: true });
}
