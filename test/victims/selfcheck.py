# Self-checks for python victims, as selfcheck.h is for C ones: "PASS what" or
# "FAIL what: why" per check, then done() prints "DONE fails=N".
fails = 0


def check(ok, what, why):
    global fails
    if not ok:
        fails += 1
    print(f'PASS {what}' if ok else f'FAIL {what}: {why!r}', flush=True)


def done():
    print(f'DONE fails={fails}', flush=True)
