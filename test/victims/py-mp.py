"""A multiprocessing Pool (fork, pipes, a semaphore in /dev/shm) squaring numbers in
rounds; prints ROUND n PASS|FAIL with the checked sum."""
import multiprocessing as mp, os, time

def square(x):
    return x * x

if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(3) as pool:
        print(f"READY pid={os.getpid()}", flush=True)
        n = 0
        while True:
            n += 1
            got = sum(pool.map(square, range(100)))
            ok = got == sum(x * x for x in range(100))
            print(f"ROUND {n} {'PASS' if ok else 'FAIL'} sum={got}", flush=True)
            time.sleep(0.1)
