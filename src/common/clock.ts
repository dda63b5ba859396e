// A monotonic clock in milliseconds, as performance.now() (whose values it does not
// share: only differences mean something). The first use of the `performance` global
// loads node:perf_hooks and its dependencies, ~2 ms of a CLI dump or restore that
// only times its phases (docs/performance.md, "CLI start-up").

/** Milliseconds since an arbitrary fixed point; for durations. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
