# A tmux server with three windows, for dump and restore of a real terminal program:
# window 0 runs bash keeping a counter in a shell variable, window 1 `less` on a file,
# window 2 vim with an unsaved change, window 3 top (it keeps /proc files open). Usage: tmux-session.py DIR MODE, MODE one of
#   detached: the server runs alone (the test dumps it by its pid);
#   attached: a `tmux` client is attached on a pty this python holds the master of, and
#             this python is a child subreaper, so the daemonised server is its child and
#             the whole session (holder, client, server, panes) is one tree to dump.
# Prints "READY pid=N server=S n=C" once every pane shows what it should. On SIGUSR1
# it checks that the session goes on: the panes show the same screens, the counter
# continues, less and vim still take keys (vim saves its buffer), top redraws, and in attached mode
# keys typed on the client's terminal reach the pane and the client redraws; "PASS
# what" or "FAIL what: why" per check, then "DONE fails=N".
import ctypes
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the victims
from selfcheck import check, done  # noqa: E402

base, mode = sys.argv[1], sys.argv[2]
sock = os.path.join(base, 'tmux.sock')
text = os.path.join(base, 'text.txt')
edited = os.path.join(base, 'edited.txt')
go = False


def on_usr1(_s, _f):
    global go
    go = True


signal.signal(signal.SIGUSR1, on_usr1)
os.environ.update(TERM='xterm', HISTFILE='/dev/null', LANG='C', LC_ALL='C')
os.environ.pop('TMUX', None)
with open(text, 'w') as f:
    f.write(''.join(f'line {i}\n' for i in range(1, 501)))
with open(edited, 'w') as f:
    f.write('first line\n')


def tmux(*args):
    r = subprocess.run(['tmux', '-S', sock, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return r.stdout if r.returncode == 0 else f'tmux {args[0]} failed: {r.stderr.strip()}'


def pane(window):
    return tmux('capture-pane', '-p', '-t', f'main:{window}')


def wait_pane(window, needle, timeout=10.0):
    end = time.time() + timeout
    while True:
        screen = pane(window)
        if needle in screen or time.time() > end:
            return screen
        time.sleep(0.05)


master = None
client_out = b''


def drain(timeout=0.0):
    """Reads what the attached client drew on its terminal (it would block on a full pty)."""
    global client_out
    while master is not None:
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            return
        try:
            client_out += os.read(master, 65536)
        except OSError:
            return


shell = ['bash', '--norc', '--noprofile']
if mode == 'attached':
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    client, master = pty.fork()
    if client == 0:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        os.execvp('tmux', ['tmux', '-S', sock, '-f', '/dev/null', 'new-session', '-s', 'main', *shell])
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))
    end = time.time() + 10
    while not os.path.exists(sock) or 'main' not in tmux('list-sessions'):
        drain(0.05)
        if time.time() > end:
            print('FAIL the attached client starts a server', flush=True)
            sys.exit(1)
else:
    tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'main', '-x', '80', '-y', '24', *shell)
tmux('set-option', '-g', 'status', 'off')
tmux('set-option', '-s', 'escape-time', '10')
tmux('new-window', '-d', '-t', 'main:1', f'less {text}')
tmux('new-window', '-d', '-t', 'main:2', f'vim -u NONE -N -i NONE --cmd "set ttimeout ttimeoutlen=10" {edited}')
tmux('new-window', '-d', '-t', 'main:3', 'top -d 0.3')
tmux('send-keys', '-t', 'main:0', 'PS1="$ "; n=0', 'Enter')
for _ in range(3):
    tmux('send-keys', '-t', 'main:0', 'n=$((n+1)); echo N=$n', 'Enter')
wait_pane(0, 'N=3')
wait_pane(1, 'line 23')
wait_pane(2, 'first line')
wait_pane(3, 'top -')
tmux('send-keys', '-t', 'main:2', 'o', 'typed before the dump', 'Escape')
wait_pane(2, 'typed before the dump')
# Settled screens only: vim leaves insert mode once its escape timeout passes, bash
# draws its prompt after the output.
before = None
end = time.time() + 10
while time.time() < end:
    drain(0.1)
    time.sleep(0.1 if master is None else 0)
    now = [pane(w) for w in range(3)]
    if now == before and '-- INSERT --' not in now[2]:
        break
    before = now
server = tmux('display-message', '-p', '#{pid}').strip()
print(f'READY pid={os.getpid()} server={server} n=3', flush=True)
while not go:
    drain(0.05)

after = [pane(w) for w in range(3)]
check(after == before, 'every pane shows the screen it showed at the dump', (before, after))
tmux('send-keys', '-t', 'main:0', 'n=$((n+1)); echo N=$n', 'Enter')
screen = wait_pane(0, 'N=4')
check('N=4' in screen, 'the counter in the shell variable continues', screen)
tmux('send-keys', '-t', 'main:1', 'G')
screen = wait_pane(1, '(END)')
check('line 500' in screen and '(END)' in screen, 'less still shows its file and takes keys', screen)
tmux('send-keys', '-t', 'main:2', ':w', 'Enter')
end = time.time() + 10
while 'typed before the dump' not in open(edited).read() and time.time() < end:
    time.sleep(0.05)
saved = open(edited).read()
check(saved == 'first line\ntyped before the dump\n', 'vim saves the buffer it held unsaved', saved)
first = pane(3)
end = time.time() + 10
while pane(3) == first and time.time() < end:
    time.sleep(0.1)
check(first.startswith('top -') and pane(3) != first, 'top redraws its screen', first)
if mode == 'attached':
    tmux('select-window', '-t', 'main:0')
    drain(0.2)
    client_out = b''
    os.write(master, b'n=$((n+1)); echo N=$n\r')
    end = time.time() + 10
    while b'N=5' not in client_out and time.time() < end:
        drain(0.05)
    check(b'N=5' in client_out, 'keys typed on the attached client reach the pane and it redraws', client_out[-400:])
    screen = wait_pane(0, 'N=5')
    check('N=5' in screen, 'the pane ran what the client typed', screen)
tmux('kill-server')
done()
