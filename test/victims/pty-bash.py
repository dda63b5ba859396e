# A real program on a pty inside the tree: this python holds the master of a pty whose
# slave runs an interactive bash (job control on) with a background job (sleep) and a
# foreground job (cat, its own process group, the terminal's foreground group). Prints
# "READY pid=N" once cat runs. On SIGUSR1 it checks that the session still works:
# a line typed reaches cat and comes back, Ctrl-C interrupts cat (not bash), bash's
# prompt comes back, `jobs` still lists the sleep and arithmetic runs; "PASS what" or
# "FAIL what: why" per check, then "DONE fails=N".
import os
import pty
import select
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the victims
from selfcheck import check, done  # noqa: E402

go = False


def on_usr1(_s, _f):
    global go
    go = True


signal.signal(signal.SIGUSR1, on_usr1)
pid, master = pty.fork()
if pid == 0:
    for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(s, signal.SIG_DFL)
    os.environ.update(PS1='PROMPT> ', TERM='dumb', HISTFILE='/dev/null')
    os.execvp('bash', ['bash', '--norc', '--noprofile', '-i'])


def read_until(token, timeout=10.0):
    buf = b''
    end = time.time() + timeout
    while token not in buf and time.time() < end:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                buf += os.read(master, 4096)
            except OSError:
                break
    return buf


read_until(b'PROMPT> ')
os.write(master, b'sleep 1000 &\n')
read_until(b'PROMPT> ')
os.write(master, b'echo cat-starts; cat\n')
read_until(b'cat-starts')
time.sleep(0.3)
print(f'READY pid={os.getpid()} bash={pid}', flush=True)
while not go:
    time.sleep(0.01)

os.write(master, b'hello-after-restore\n')
got = read_until(b'hello-after-restore\r\nhello-after-restore')
check(got.count(b'hello-after-restore') >= 2, 'a line reaches cat and comes back', got)
os.write(master, b'\x03')
got = read_until(b'PROMPT> ')
check(b'PROMPT> ' in got, 'Ctrl-C stops cat and bash prompts again', got)
os.write(master, b'jobs; echo sum=$((40+2))\n')
got = read_until(b'sum=42')
check(b'sum=42' in got and b'sleep 1000' in got, 'bash still has its background job and runs commands', got)
os.write(master, b'kill %1; exit 0\n')
_, status = os.waitpid(pid, 0)
check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, 'bash exits', status)
done()
sys.exit(0)
