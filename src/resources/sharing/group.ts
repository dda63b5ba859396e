/**
 * Grouping by a kernel-provided total order (kcmp). Sorting with the order as the
 * comparator and then joining equal neighbours finds every set of items that are
 * the same kernel object in O(N log N) comparisons, instead of O(N²) pairwise.
 */

export type Order = -1 | 0 | 1;

/** Thrown by a comparator when one of its items no longer exists (process exited, fd closed). */
export class ItemGone<T> extends Error {
  readonly item: T;
  constructor(item: T, why: string) {
    super(why);
    this.name = 'ItemGone';
    this.item = item;
  }
}

export interface Grouping<T> {
  /** Every group of equal items, in kernel order; singletons included. */
  groups: T[][];
  /** Items dropped because they vanished during the sort. */
  gone: T[];
  /** Comparator calls made (including those of sorts abandoned because an item vanished). */
  calls: number;
}

export interface GroupOptions<T> {
  /** After a complete sort, items that turn out to have vanished (e.g. became zombies): the sort is redone without them. */
  stillThere?: (item: T) => boolean;
}

/**
 * Groups `items` by `compare`. When `compare` throws ItemGone, that item is dropped
 * and the sort is restarted; every restart removes an item, so this terminates.
 */
export function groupByOrder<T>(items: readonly T[], compare: (a: T, b: T) => Order, opts: GroupOptions<T> = {}): Grouping<T> {
  let live = [...items];
  const gone: T[] = [];
  let calls = 0;
  for (;;) {
    // Memo by index pair: the neighbour pass below re-asks many pairs the sort already asked.
    const memo = new Map<number, Order>();
    const n = live.length;
    const cmp = (i: number, j: number): Order => {
      const key = i * n + j;
      const known = memo.get(key);
      if (known !== undefined) return known;
      calls++;
      const r = compare(live[i] as T, live[j] as T);
      memo.set(key, r);
      memo.set(j * n + i, (r === 0 ? 0 : -r) as Order);
      return r;
    };
    try {
      const order = live.map((_, i) => i).sort(cmp);
      const groups: number[][] = [];
      for (const i of order) {
        const last = groups[groups.length - 1];
        if (last && cmp(last[0] as number, i) === 0) last.push(i);
        else groups.push([i]);
      }
      const vanished = opts.stillThere ? live.filter((it) => !(opts.stillThere as (x: T) => boolean)(it)) : [];
      if (vanished.length > 0) {
        gone.push(...vanished);
        live = live.filter((it) => !vanished.includes(it));
        continue;
      }
      return { groups: groups.map((g) => g.map((i) => live[i] as T)), gone, calls };
    } catch (e) {
      if (!(e instanceof ItemGone)) throw e;
      gone.push(e.item as T);
      live = live.filter((it) => it !== e.item);
    }
  }
}
