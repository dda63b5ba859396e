"""A real interpreter with state for dump/restore end to end: a dict and a growing list,
with invariants checked every 100 ms. Prints READY, then `n=N sum=S ok` (or FAIL ...)."""
import hashlib
import os
import sys
import time

items = []
total = 0
index = {}  # str(i) -> (i, i*i, sha1 of str(i))
n = 0
print(f"READY pid={os.getpid()}", flush=True)
while True:
    for _ in range(50):
        n += 1
        items.append(n * 3 + 1)
        total += n * 3 + 1
        index[str(n)] = (n, n * n, hashlib.sha1(str(n).encode()).hexdigest())
    problems = []
    if sum(items) != total:
        problems.append(f"sum {sum(items)} != total {total}")
    if len(items) != n or len(index) != n:
        problems.append(f"lengths {len(items)} {len(index)} != {n}")
    for k, (i, sq, h) in index.items():
        if k != str(i) or sq != i * i or h != hashlib.sha1(k.encode()).hexdigest() or items[i - 1] != i * 3 + 1:
            problems.append(f"entry {k} inconsistent")
            break
    if problems:
        print(f"FAIL n={n} " + "; ".join(problems), flush=True)
    else:
        print(f"n={n} sum={total} ok", flush=True)
    time.sleep(0.1)
