"""A ThreadPoolExecutor computing known results and a threading.Event, checked every round.
Prints READY, then ROUND n PASS|FAIL lines."""
import concurrent.futures, os, sys, threading, time

stop = threading.Event()
ticks = [0]

def ticker():
    while not stop.wait(0.05):
        ticks[0] += 1

def work(k):
    s = 0
    for i in range(20000):
        s += (i * k) % 7
    return k, s

expected = {k: sum((i * k) % 7 for i in range(20000)) for k in range(16)}
threading.Thread(target=ticker, daemon=True).start()
with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    print(f"READY pid={os.getpid()} threads={threading.active_count()}", flush=True)
    n = 0
    while True:
        n += 1
        before = ticks[0]
        results = dict(pool.map(work, range(16)))
        time.sleep(0.1)
        # The ticker must move on, but how soon is the scheduler's business (a loaded
        # machine, a round spanning a dump and restore): wait for it, not a fixed time.
        deadline = time.monotonic() + 10
        while ticks[0] <= before and time.monotonic() < deadline:
            time.sleep(0.01)
        ok = results == expected and ticks[0] > before and not stop.is_set()
        print(f"ROUND {n} {'PASS' if ok else 'FAIL'} ticks={ticks[0]}", flush=True)
