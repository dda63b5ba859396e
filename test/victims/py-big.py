"""A real interpreter with a big heap, for the page copy ckpt shares with the target:
a bytearray of N MiB (argv[1], default 64) filled with a different pattern per MiB,
and half a million int objects in a list. Every 0.3 s it checks both against digests
taken at start and prints `round=K ok` (or FAIL)."""
import hashlib
import os
import sys
import time

mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
blob = bytearray(mib << 20)
for i in range(mib):
    blob[i << 20:(i + 1) << 20] = hashlib.sha256(b"ckpt" + i.to_bytes(4, "little")).digest() * (1 << 15)
digest = hashlib.sha256(blob).hexdigest()
nums = list(range(500_000))
total = sum(nums)
print(f"READY pid={os.getpid()} mib={mib}", flush=True)
k = 0
while True:
    k += 1
    ok = hashlib.sha256(blob).hexdigest() == digest and len(nums) == 500_000 and sum(nums) == total
    print(f"round={k} {'ok' if ok else 'FAIL'}", flush=True)
    time.sleep(0.3)
