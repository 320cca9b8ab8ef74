#!/usr/bin/env python3
"""Training speed of charrnn.py beside the seed notebook's own code and a PyTorch port.

usage, from the project's root:  python3 bench/speed.py [EPOCHS] [ROUNDS]   (defaults: 20 3)

The three train the notebook's default model on the CPU (random sampling, the first 10,000
characters of the lyrics, batch 32, 35 steps, 256 ReLU units, lr 100, clipping 0.01):
  charrnn   charrnn.py --sampler random, the project's own file, run from the project's root
  notebook  bench/notebook_rnn.py: the notebook's own method (MXNet NDArray, one op per step)
  torch     bench/torch_rnn.py: the same model and training ported line for line to PyTorch
In each round each program runs as a whole process twice, for 3 and for 3+EPOCHS epochs: the
difference divided by EPOCHS is its seconds per epoch, start-up (imports, data, warm-up) taken
out. Every other round runs the programs in reverse order, so the machine's drift falls on all.
Each round prints the seconds per epoch and the load average after it; the last line gives the
medians over the rounds of the per-round ratios, charrnn/notebook and charrnn/torch. Below 1,
charrnn is faster (0.25: a quarter of the time); above 1, slower. Shared virtual machines drift
by 20-30% from minute to minute: compare ratios from one run, not seconds from different runs,
and distrust a round whose load average shows work that you did not start.

Environment variables:
  DATA=PATH        the lyrics zip (default: jaychou_lyrics.txt.zip beside charrnn.py; if it
                   is absent, charrnn's own download() fetches it there, SHA-1 checked)
  BUSY=N           start N CPU-bound processes (Python `while True: pass`) that compete with
                   every timed run, as a second job would; stopped at exit, also on failure
  WHEN=start|late|gone   when the BUSY processes run (default start: throughout). late: each
                   timed run starts quiet, and they start after its import and first epoch;
                   gone: they run as it starts and stop then. "Then" is the time a whole 1-epoch
                   run takes (measured first, twice, for each program, in the load at the start):
                   it falls in the second or third epoch of both timed runs, at the same point,
                   as long as a program's last report and exit take less than two epochs
  BEFORE=PATH      another charrnn.py (say `git show REV:charrnn.py > /tmp/before.py`) timed
                   beside charrnn in the same rounds; the last line adds charrnn/before
  MXNET_VENV=DIR   the virtual environment for charrnn and the notebook (default
                   bench/.venv-mxnet), made on first use with `pip install -r requirements.txt`
  TORCH_VENV=DIR   the one for PyTorch (default bench/.venv-torch), made on first use with
                   `pip install -r bench/requirements-torch.txt`
  OMP_NUM_THREADS  passed on to every program; unset (as printed first), each picks its own
  CUDA_VISIBLE_DEVICES is set empty for every program: charrnn would take a GPU if it had one
A program that fails ends the run, naming its command and showing its last lines of output.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
WHEN = os.environ.get('WHEN', 'start')
ROOT = os.path.dirname(BENCH)


def venv(path, requirements):
    """The venv's python; the venv is made and the requirements installed on first use."""
    path = os.path.abspath(path)
    python = os.path.join(path, 'bin', 'python')
    if not os.path.exists(python):
        print('making %s: pip install -r %s (once)' % (path, requirements), flush=True)
        existed, ok = os.path.exists(path), False
        try:
            ok = not (subprocess.run([sys.executable, '-m', 'venv', path]).returncode or
                      subprocess.run([python, '-m', 'pip', 'install', '-q', '-r', requirements],
                                     cwd=ROOT).returncode)
        finally:
            if not ok and not existed:  # half made: made anew next time
                shutil.rmtree(path, ignore_errors=True)
        if not ok:
            sys.exit('could not make %s (see above)' % path)
    return python


def lyrics(python):
    """The corpus: DATA, or the zip beside charrnn.py, fetched if absent by charrnn.download() run
    with the venv's python (charrnn's URL and SHA-1, not a copy of them)."""
    if 'DATA' in os.environ:
        data = os.path.abspath(os.environ['DATA'])
        if not os.path.isfile(data):
            sys.exit('no DATA=%s: give the path of the lyrics zip' % data)
        return data
    data = os.path.join(ROOT, 'jaychou_lyrics.txt.zip')  # charrnn.DATA_PATH
    if not os.path.isfile(data):
        print('no %s: charrnn.download() fetches it (once)' % data, flush=True)
        p = subprocess.run([python, '-c', 'import charrnn; charrnn.download()'], cwd=ROOT,
                           stderr=subprocess.PIPE, text=True, errors='replace')
        if p.returncode:  # the exception's line, charrnn's own words (offline, SHA-1, ...)
            last = (p.stderr.strip().splitlines() or ['charrnn.download() failed'])[-1]
            sys.exit('bench/speed.py: %s (DATA=PATH also names the zip)' % last)
    return data


def spin(n):
    """n CPU-bound processes, as a second job would be."""
    return [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(n)]


def stop(busy):
    for p in busy:
        p.kill()
        p.wait()
    busy.clear()


def seconds(cmd, busy=0, switch=None):
    """The wall time of cmd; with switch (seconds after it starts), busy processes start then
    (late) or, started with it, stop then (gone)."""
    started = spin(busy) if switch and WHEN == 'gone' else []
    t0 = time.perf_counter()
    with tempfile.TemporaryFile('w+', errors='replace') as out:
        try:
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
            try:
                p.wait(timeout=switch)
            except subprocess.TimeoutExpired:  # still running at the switch
                if WHEN == 'late':
                    started = spin(busy)
                else:
                    stop(started)
                p.wait()
        finally:
            stop(started)
        if p.returncode:
            out.seek(0)
            tail = '\n'.join(out.read().splitlines()[-20:])
            sys.exit('failed (exit %d): %s\n%s' % (p.returncode, ' '.join(cmd), tail))
    return time.perf_counter() - t0


def main(args):
    if '-h' in args or '--help' in args:
        print(__doc__)
        return 0
    if len(args) > 2 or not all(a.isdigit() and int(a) > 0 for a in args):
        sys.exit('usage: python3 bench/speed.py [EPOCHS] [ROUNDS]   (-h for more)')
    epochs, rounds = [int(a) for a in args] + [20, 3][len(args):]
    os.environ['CUDA_VISIBLE_DEVICES'] = ''  # the CPU for all three, a GPU or not
    print('threads: OMP_NUM_THREADS=%s, %d CPUs'
          % (os.environ.get('OMP_NUM_THREADS', 'unset'), os.cpu_count()), flush=True)
    mx = venv(os.environ.get('MXNET_VENV', os.path.join(BENCH, '.venv-mxnet')), 'requirements.txt')
    data = lyrics(mx)
    torch = venv(os.environ.get('TORCH_VENV', os.path.join(BENCH, '.venv-torch')),
                 os.path.join('bench', 'requirements-torch.txt'))

    def charrnn(script):
        return lambda n: [mx, script, '--data', data, '--sampler', 'random', '--epochs', str(n),
                          '--pred-period', str(n)]
    programs = {'charrnn': charrnn('charrnn.py')}
    if os.environ.get('BEFORE'):  # beside charrnn, so that the two share each round's conditions
        programs['before'] = charrnn(os.path.abspath(os.environ['BEFORE']))
    programs['notebook'] = lambda n: [mx, os.path.join('bench', 'notebook_rnn.py'), data, str(n)]
    programs['torch'] = lambda n: [torch, os.path.join('bench', 'torch_rnn.py'), data, str(n)]
    if WHEN not in ('start', 'late', 'gone'):
        sys.exit('WHEN must be start, late or gone')
    n = int(os.environ.get('BUSY', '0'))
    busy, switch = [], dict.fromkeys(programs)
    try:
        if n and WHEN == 'start':
            busy = spin(n)
        if n:
            print('busy: %d competing CPU-bound processes (%s)' % (n, WHEN), flush=True)
        if n and WHEN != 'start':  # a 1-epoch run's time: within the timed runs' training
            for name in programs:
                load = n if WHEN == 'gone' else 0
                runs = [seconds(programs[name](1), load, 1e9) for _ in range(2)]
                switch[name] = statistics.mean(runs)
            print('switch after %s s' % ', '.join('%s %.2f' % item for item in switch.items()))
        ratios = {name: [] for name in ('notebook', 'torch', 'before') if name in programs}
        for i in range(1, rounds + 1):
            order = list(programs) if i % 2 else list(programs)[::-1]
            s = {name: (seconds(programs[name](3 + epochs), n, switch[name])
                        - seconds(programs[name](3), n, switch[name])) / epochs for name in order}
            print('round %d: s/epoch %s   (load average %.2f)'
                  % (i, '  '.join('%s %.3f' % (name, s[name]) for name in programs),
                     os.getloadavg()[0]), flush=True)
            for name in ratios:
                ratios[name].append(s['charrnn'] / s[name])
        medians = '  '.join('charrnn/%s %.3f' % (name, statistics.median(r))
                            for name, r in ratios.items())
        print('%s  (medians of %d rounds, %d epochs each%s)'
              % (medians, rounds, epochs, ', %d busy processes, %s' % (n, WHEN) if n else ''))
    finally:
        stop(busy)
    return 0


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the busy ones stop too
    sys.exit(main(sys.argv[1:]))
