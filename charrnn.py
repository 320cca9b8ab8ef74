"""charrnn: the char-RNN of Dive into Deep Learning (动手学深度学习) from scratch on MXNet, in one
file. It learns Jay Chou's lyrics, writes new ones, and `import charrnn as d2l` runs the chapter."""
import argparse
import contextlib
import ctypes
import difflib
import functools
import hashlib
import importlib.metadata
import inspect
import math
import os
import pathlib
import random
import signal
import sys
import time
import zipfile
import zlib

import numpy as np

np.bool = bool  # MXNet 1.9.1 uses np.bool: gone from numpy 1.24 to 1.26 (Python 3.12 needs 1.26)


def free_cores(proc='/proc', cgroup='/sys/fs/cgroup', smt='/sys/devices/system/cpu/smt/active'):
    """This process's CPUs (taskset), one a core (SMT), within its quota, less others' tasks."""
    def read(path, default=''):
        with contextlib.suppress(OSError):
            return pathlib.Path(path).read_text()
        return default
    cpus = len(os.sched_getaffinity(0))
    v1 = cgroup + '/cpu/cpu.cfs_%s_us'
    limit = (read(cgroup + '/cpu.max') or read(v1 % 'quota') + read(v1 % 'period')).split()
    quota = math.ceil(int(limit[0]) / int(limit[1])) if limit and limit[0].isdigit() else cpus
    tasks = list(pathlib.Path(proc, 'self', 'task').glob('*/stat'))  # this process's threads
    mine = None  # which are running or runnable: read until alike before and after the load
    while mine != (mine := [read(t, ') S').rsplit(')', 1)[1].split()[0] == 'R' for t in tasks]):
        runnable = max(int(read(proc + '/loadavg').split()[3].split('/')[0]) for _ in range(2))
    cores = cpus // (1 if read(smt, '1').strip() == '0' else 2)
    return max(1, min(cores, quota, cpus - runnable + sum(mine)))  # no quota: 'max' (v2), -1 (v1)


# OpenMP threads spin as they wait: one without a core stalls all. One a free core, each minibatch.
env = {}
if os.path.exists('/proc/loadavg'):  # Linux; a cached oneDNN transpose would keep its old count
    env.update(OMP_NUM_THREADS=str(free_cores()), MXNET_MKLDNN_CACHE_NUM='0',
               MXNET_ENGINE_TYPE='NaiveEngine')  # each operator run by its caller, so counted there
CUDA_LIBS = ('libcudart.so.11.0 libcublasLt.so.11 libcublas.so.11 libcufft.so.10 libcurand.so.10 '
             'libcusolver.so.11 libnvrtc.so.11.2 libnvToolsExt.so.1 libnccl.so.2 libcudnn.so.8')
with contextlib.suppress(ImportError):  # not mxnet-cu112, which seeks CUDA in its own folder only
    site = pathlib.Path(importlib.metadata.distribution('mxnet-cu112').locate_file(''))
    env['MXNET_CUDNN_LIB_CHECKING'] = '0'  # cuDNN 8.9 from PyPI, built for 8.1
    for lib in [p for name in CUDA_LIBS.split() for p in site.glob('nvidia/*/lib/' + name)]:
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)  # pip's CUDA wheels, in the order they need

env = {name: value for name, value in env.items() if name not in os.environ}  # the user's wins
os.environ.update(env)  # read as MXNet loads and starts; then taken back: a child inherits none
stderr = os.dup(2) if os.path.lexists('/proc/self/fd/2') else None  # None: closed, or not Linux
try:
    import mxnet as mx
    from mxnet import autograd, nd
    if mx.context.num_gpus() and env.pop('MXNET_ENGINE_TYPE', None):  # a GPU computes while
        del os.environ['MXNET_ENGINE_TYPE']  # Python queues: the threaded engine, the default
    if stderr is not None:  # the synchronous engine names itself there as it starts: hidden
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
    nd.ones((2, 2)).T.wait_to_read()  # starts the engine; a oneDNN operator reads its cache setting
except Exception as e:  # not installed, a library it needs (OSError), numpy 2 (AttributeError)
    advice = 'pip install -r requirements.txt (MXNet 1.9.1 needs numpy<2; Python 3.14+: a 3.12)'
    message = 'cannot import mxnet (%s: %s): %s' % (type(e).__name__, str(e).split('\n')[0], advice)
    if __name__ == '__main__':
        sys.exit('charrnn: error: ' + message)
    raise ImportError(message) from e
finally:
    if stderr is not None:
        os.dup2(stderr, 2)
        os.close(stderr)
    for name in env:
        del os.environ[name]


def try_gpu():
    """mx.gpu() if it runs a kernel (the book's only allocates: Hopper passes), else mx.cpu()."""
    if mx.context.num_gpus() == 0:  # asking a CPU-only MXNet for mx.gpu() logs an error
        return mx.cpu()
    try:
        (nd.ones((2,), ctx=mx.gpu()) * 2).asnumpy()
    except mx.base.MXNetError as e:
        print('charrnn: using the CPU (%s)' % str(e).strip().splitlines()[-1], file=sys.stderr)
        return mx.cpu()
    return mx.gpu()


ctx = try_gpu()
DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jaychou_lyrics.txt.zip')
LINE_BREAKS = dict.fromkeys(map(ord, '\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029'), ' ')  # splitlines()'s


def load_data_jay_lyrics(path=None, num_chars=10000):
    """(corpus_indices, char_to_idx, idx_to_char, vocab_size) of the first num_chars characters
    (None or 0: all) of a UTF-8 .txt or of the first .txt in a .zip, each line break a space;
    path None: the lyrics beside this file, downloaded if absent. The vocabulary is sorted."""
    if path is None:
        path = DATA_PATH if os.path.exists(DATA_PATH) else download()
    try:
        if str(path).lower().endswith('.zip'):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.lower().endswith('.txt')]
                if not names:
                    raise ValueError('%r holds no .txt' % str(path))
                raw = z.read(names[0])
        else:
            raw = pathlib.Path(path).read_bytes()
        text = raw.decode('utf-8-sig')  # a byte-order mark is not a character of the text
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError,
            UnicodeDecodeError) as e:  # corrupt, encrypted, Deflate64, ...
        raise ValueError('%r is not a UTF-8 .txt, or a .zip holding one (%s)' % (
            str(path), str(e) or type(e).__name__)) from None  # an EOFError says nothing
    text = text.replace('\r\n', '\n').translate(LINE_BREAKS)[:num_chars or None]
    if not text.strip():
        raise ValueError('%r: no text in %s, only spaces and line breaks or nothing' % (
            str(path), 'its first %d characters' % num_chars if num_chars else 'it'))
    idx_to_char = sorted(set(text))  # the book's list(set(text)) changes order from run to run
    char_to_idx = {c: i for i, c in enumerate(idx_to_char)}
    return [char_to_idx[c] for c in text], char_to_idx, idx_to_char, len(idx_to_char)


def download(url='https://github.com/d2l-ai/d2l-zh/raw/v1/data/jaychou_lyrics.txt.zip',
             path=DATA_PATH, sha1='9529987e701a4f37048ab778270a5dde9a762a0b'):
    """Fetch url to path, kept only if its SHA-1 is sha1."""
    import urllib.request  # here: it is slow to import, and only this needs it
    try:
        data = urllib.request.urlopen(url, timeout=60).read()
    except Exception as e:  # offline, refused, cut short (IncompleteRead), ...
        raise FileNotFoundError('%r is missing and could not be downloaded from %s (%s): copy '
                                'it there, or pass --data PATH' % (str(path), url, e)) from None
    if hashlib.sha1(data).hexdigest() != sha1:
        raise ValueError('%s does not have the SHA-1 %s: not kept' % (url, sha1))
    pathlib.Path(str(path) + '.part').write_bytes(data)  # whole or not at all: then renamed
    os.replace(str(path) + '.part', path)
    return path


def data_iter_random(corpus_indices, batch_size, num_steps, ctx=None):
    """随机采样: disjoint windows in random order; Y is X shifted by one character."""
    corpus = np.asarray(corpus_indices)
    starts = np.arange((len(corpus) - 1) // num_steps) * num_steps
    random.shuffle(starts)
    for i in range(len(starts) // batch_size):
        window = starts[i * batch_size:(i + 1) * batch_size, None] + np.arange(num_steps)
        yield nd.array(corpus[window], ctx=ctx), nd.array(corpus[window + 1], ctx=ctx)


def data_iter_consecutive(corpus_indices, batch_size, num_steps, ctx=None):
    """相邻采样: the corpus cut into batch_size rows; batch k + 1 goes on where batch k ended."""
    batch_len = len(corpus_indices) // batch_size
    rows = nd.array(corpus_indices[:batch_size * batch_len], ctx=ctx).reshape((batch_size, -1))
    for i in range(0, (batch_len - 1) // num_steps * num_steps, num_steps):
        yield rows[:, i:i + num_steps], rows[:, i + 1:i + 1 + num_steps]


def to_onehot(X, size):
    """(batch, num_steps) indices -> num_steps one-hot (batch, size) matrices: one operator."""
    return list(nd.one_hot(X.T, size))


def get_params(vocab_size, num_hiddens, ctx, gates=1):
    """W_xh, W_hh, b_h (of each gate), then W_hq, b_q: weights from N(0, 0.01²), biases zero."""
    V, H = vocab_size, num_hiddens
    params = [nd.random.normal(scale=0.01, shape=s, ctx=ctx) if len(s) == 2
              else nd.zeros(s, ctx=ctx) for s in [(V, H), (H, H), (H,)] * gates + [(H, V), (V,)]]
    for param in params:
        param.attach_grad()
    return params


def init_rnn_state(batch_size, num_hiddens, ctx, parts=1):
    """(H,): a tuple, as a state of several parts (the LSTM's (H, C)) is."""
    return tuple(nd.zeros((batch_size, num_hiddens), ctx=ctx) for _ in range(parts))


def affine_steps(X, W, b, num_steps):
    """X W + b for all the steps stacked in X, as one large product, then split by step."""
    Z = nd.FullyConnected(X, W.T, b, num_hidden=W.shape[1])
    return list(nd.split(Z, num_outputs=num_steps, axis=0)) if num_steps > 1 else [Z]


def times(W):
    """H -> H W by FullyConnected (oneDNN: faster than nd.dot's OpenBLAS), Wᵀ made once."""
    W_T = W.T
    return lambda H: nd.FullyConnected(H, W_T, no_bias=True, num_hidden=W.shape[1])


def dropout(X, drop_prob):
    """丢弃法: each element zeroed with probability drop_prob, the rest divided by 1 - drop_prob."""
    assert 0 <= drop_prob <= 1
    if drop_prob == 1:
        return X.zeros_like()
    mask = nd.random.uniform(0, 1, X.shape, ctx=X.context) < 1 - drop_prob
    return mask * X / (1 - drop_prob)


def drop(X, drop_prob):
    """dropout(X, drop_prob) while training (inside autograd.record()), else X itself."""
    return dropout(X, drop_prob) if drop_prob and autograd.is_training() else X


def rnn(inputs, state, params, activation='relu', drop_probs=(0, 0)):
    """循环神经网络: H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q; φ ReLU (the
    notebook's) or tanh (the book's); drop_probs: dropout of X_t and of H_t → O_t in training."""
    phi = {'relu': nd.relu, 'tanh': nd.tanh}[activation]
    W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    H_W_hh = times(W_hh)
    X = drop(nd.concat(*inputs, dim=0), drop_probs[0])  # all steps: X W_xh + b_h, then split
    Hs = []
    for XW_t in affine_steps(X, W_xh, b_h, len(inputs)):
        H = phi(XW_t + H_W_hh(H))
        Hs.append(H)
    return affine_steps(drop(nd.concat(*Hs, dim=0), drop_probs[1]), W_hq, b_q, len(Hs)), (H,)


def lstm(inputs, state, params, drop_probs=(0, 0)):
    """长短期记忆: I, F, O = σ(X W_x* + H W_h* + b_*), C̃ = tanh(X W_xc + H W_hc + b_c),
    C = F ⊙ C + I ⊙ C̃, H = O ⊙ tanh(C); drop_probs as in rnn."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    (H, C) = state
    X = drop(nd.concat(*inputs, dim=0), drop_probs[0])  # all steps: X W_x* + b_*, then split
    XI, XF, XO, XC = [affine_steps(X, W, b, len(inputs)) for W, b in
                      [(W_xi, b_i), (W_xf, b_f), (W_xo, b_o), (W_xc, b_c)]]
    hi, hf, ho, hc = times(W_hi), times(W_hf), times(W_ho), times(W_hc)
    Hs = []
    for xi, xf, xo, xc in zip(XI, XF, XO, XC):
        I = nd.sigmoid(xi + hi(H))  # noqa: E741 (the book's names)
        F = nd.sigmoid(xf + hf(H))
        O = nd.sigmoid(xo + ho(H))  # noqa: E741
        C_tilda = nd.tanh(xc + hc(H))
        C = F * C + I * C_tilda
        H = O * nd.tanh(C)
        Hs.append(H)
    return affine_steps(drop(nd.concat(*Hs, dim=0), drop_probs[1]), W_hq, b_q, len(Hs)), (H, C)


get_lstm_params = functools.partial(get_params, gates=4)  # the gates i, f, o, the candidate c
init_lstm_state = functools.partial(init_rnn_state, parts=2)  # (H, C): and the memory cell
CELLS = {'rnn': (get_params, init_rnn_state, rnn), 'lstm': (get_lstm_params, init_lstm_state, lstm)}


def predict_rnn(prefix, num_chars, rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx,
                idx_to_char, char_to_idx, temperature=0):
    """prefix and num_chars characters more: the likeliest, or drawn from softmax(O / T), T > 0."""
    output = [char_to_idx[c] for c in prefix]
    state = init_rnn_state(1, num_hiddens, ctx)
    X = nd.array([output], ctx=ctx)  # the whole prefix in one call sets the state up
    for _ in range(num_chars):
        Y, state = rnn(to_onehot(X, vocab_size), state, params)
        if temperature > 0:  # softmax's own temperature takes the largest O first: no overflow
            T = max(temperature, np.finfo(np.float32).tiny)  # float32 must not round T to 0
            next_idx = nd.sample_multinomial(nd.softmax(Y[-1], temperature=T))
        else:
            next_idx = Y[-1].argmax(axis=1)
        output.append(int(next_idx.asscalar()))
        X = nd.array([output[-1:]], ctx=ctx)
    return ''.join(idx_to_char[i] for i in output)


def longest_copy(written, text):
    """The longest stretch of written found in text (the earliest of the longest)."""
    i, _, size = difflib.SequenceMatcher(None, written, text, autojunk=False).find_longest_match(
        0, len(written), 0, len(text))
    return written[i:i + size]


def grad_clipping(params, theta, ctx):
    """裁剪梯度: g <- min(θ / ||g||, 1) g, g all the gradients as one vector, on the device."""
    grads = [p.grad for p in params]
    norm = nd.multi_sum_sq(*grads, num_arrays=len(grads)).sum().sqrt()
    scale = nd.minimum(theta / norm, 1)
    for g in grads:
        g[:] *= scale


def sequence_loss(outputs, Y):
    """Mean cross-entropy per character, exact for any finite logits (log_softmax, not log(p))."""
    return -nd.pick(nd.log_softmax(nd.concat(*outputs, dim=0)), Y.T.reshape((-1,))).mean()


def evaluate_perplexity(rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx,
                        corpus_indices, num_steps):
    """困惑度 of a text read in order, the state carried from window to window (inf: overflow)."""
    windows = (len(corpus_indices) - 1) // num_steps
    if windows < 1:
        raise ValueError('no window of %d steps: %d characters' % (num_steps, len(corpus_indices)))
    state = init_rnn_state(1, num_hiddens, ctx)
    loss_sum = nd.zeros(1, ctx=ctx)
    for X, Y in data_iter_consecutive(corpus_indices, 1, num_steps, ctx):
        outputs, state = rnn(to_onehot(X, vocab_size), state, params)
        loss_sum += sequence_loss(outputs, Y)
    mean_loss = loss_sum.asscalar() / windows
    return math.inf if mean_loss >= 709 else math.exp(mean_loss)  # NaN stays NaN


def sgd(params, lr, batch_size, wd=0):
    """p <- p - lr (grad / batch_size + wd p), wd weight decay (权重衰减): one operator each."""
    for p in params:  # any number of them (multi_sgd_update took 60 at most)
        nd.sgd_update(p, p.grad, lr=lr, wd=wd, rescale_grad=1 / batch_size, out=p)


def init_adam_states(params):
    """Adam's moving averages for each parameter, at zero: v of the gradient, s of its square."""
    return [(p.zeros_like(), p.zeros_like()) for p in params]


def adam(params, states, hyperparams):
    """The book's Adam: v <- β1 v + (1 - β1) g, s <- β2 s + (1 - β2) g², each divided by 1 - β^t
    at step t, then p <- p - lr (v̂ / (√ŝ + ε) + wd p): hyperparams lr, t, wd (AdamW's decay)."""
    beta1, beta2, eps = 0.9, 0.999, 1e-6
    wd = hyperparams.get('wd', 0)
    for p, (v, s) in zip(params, states):
        v[:] = beta1 * v + (1 - beta1) * p.grad
        s[:] = beta2 * s + (1 - beta2) * p.grad.square()
        v_bias_corr = v / (1 - beta1 ** hyperparams['t'])
        s_bias_corr = s / (1 - beta2 ** hyperparams['t'])
        p[:] -= hyperparams['lr'] * (v_bias_corr / (s_bias_corr.sqrt() + eps) + wd * p)
    hyperparams['t'] += 1


def train_and_predict_rnn(rnn, get_params, init_rnn_state, num_hiddens, vocab_size, ctx,
                          corpus_indices, idx_to_char, char_to_idx, is_random_iter, num_epochs,
                          num_steps, lr, clipping_theta, batch_size, pred_period, pred_len,
                          prefixes, temperature=0, val_indices=None, history=None, on_report=None,
                          weight_decay=0, adam_state=None):
    """Clipped gradients, then SGD, or Adam given adam_state (init_adam_states(params), {'t': 1}).
    Each report calls on_report(epoch, params' copy, history) first; history gets 'train', 'val'."""
    need = batch_size * num_steps + 1 if is_random_iter else batch_size * (num_steps + 1)
    if len(corpus_indices) < need:  # said now, not after an epoch of no minibatch
        raise ValueError('no minibatch: --batch-size %d × --num-steps %d needs %d characters, '
                         'not %d' % (batch_size, num_steps, need, len(corpus_indices)))
    if val_indices is not None and len(val_indices) <= num_steps:  # no window to score
        raise ValueError('held out (--val-frac): %d characters, no window' % len(val_indices))
    data_iter_fn = data_iter_random if is_random_iter else data_iter_consecutive
    sized = inspect.signature(get_params).parameters  # the book's get_params() reads globals
    params = get_params(vocab_size, num_hiddens, ctx) if sized else get_params()
    if adam_state:
        adam_state[1].update(lr=lr, wd=weight_decay)
    text = ''.join(idx_to_char[i] for i in corpus_indices).replace(' ', '')  # for copies
    history = {} if history is None else history
    history.update(train=[], val=[])
    start = time.time()
    for epoch in range(1, num_epochs + 1):
        if not is_random_iter:  # 相邻采样: one state runs through the epoch
            state = init_rnn_state(batch_size, num_hiddens, ctx)
        loss_sum = nd.zeros(1, ctx=ctx)
        for t, (X, Y) in enumerate(data_iter_fn(corpus_indices, batch_size, num_steps, ctx)):
            if 'OMP_NUM_THREADS' in env and 'MXNET_ENGINE_TYPE' in env:  # others' work changes
                mx.base.check_call(mx.base._LIB.MXSetNumOMPThreads(free_cores()))
            if is_random_iter:  # 随机采样: unrelated windows, each starts from zero
                state = init_rnn_state(batch_size, num_hiddens, ctx)
            else:  # cut the graph between batches, keeping the result (the book drops it)
                state = tuple(s.detach() for s in state)
            with autograd.record():
                outputs, state = rnn(to_onehot(X, vocab_size), state, params)
                loss = sequence_loss(outputs, Y)
            loss.backward()
            grad_clipping(params, clipping_theta, ctx)
            if adam_state:
                adam(params, *adam_state)
            else:
                sgd(params, lr, 1, weight_decay)  # the loss is a mean already
            loss_sum += loss
        mean_loss = loss_sum.asscalar() / (t + 1)  # the epoch's one wait for the device
        if epoch == num_epochs:  # losses come before their steps: the last step's, on its batch
            after = sequence_loss(rnn(to_onehot(X, vocab_size), state, params)[0], Y).asscalar()
            mean_loss = mean_loss if after < 700 else after
        if not mean_loss < 700:  # NaN, or a perplexity past float range: training diverged
            raise FloatingPointError(
                'the loss became %g in epoch %d: lower the learning rate (%g), θ (%g) or the '
                'weight decay (%g)' % (mean_loss, epoch, lr, clipping_theta, weight_decay))
        history['train'].append(math.exp(mean_loss))
        if epoch % pred_period and epoch < num_epochs:
            continue
        eta = round((time.time() - start) / epoch * (num_epochs - epoch))  # h:mm:ss, any h
        line = 'epoch %d/%d, perplexity %.2f, %.2f s/epoch, ETA %d:%02d:%02d' % (
            epoch, num_epochs, history['train'][-1], (time.time() - start) / epoch,
            eta // 3600, eta // 60 % 60, eta % 60)
        if val_indices is not None:
            history['val'].append((epoch, evaluate_perplexity(
                rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx, val_indices, num_steps)))
            line += ', val perplexity %.2f' % history['val'][-1][1]
        if on_report:  # first: what it keeps or draws comes before the report's words
            on_report(epoch, [p.copy() for p in params], history)
        print(line, flush=True)
        for prefix in prefixes:  # and the longest stretch copied, spaces (line breaks) aside
            written = predict_rnn(prefix, pred_len, rnn, params, init_rnn_state, num_hiddens,
                                  vocab_size, ctx, idx_to_char, char_to_idx, temperature)
            new = written[len(prefix):]
            copied = longest_copy(new.replace(' ', ''), text)
            shown = prefix + '(%d× space or line break)' % len(new) if new.isspace() else written
            print(' - %s  [copied %d/%d]' % (shown, len(copied), pred_len), flush=True)
    return params


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):  # by hand where the default is None
    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv=None):
    """The flags, checked; their defaults reproduce the notebook's run."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelp)
    a = p.add_argument
    a('--data', metavar='PATH', help='a UTF-8 .txt, or a .zip holding one (default: the lyrics)')
    a('--corpus-chars', type=int, default=10000, help='the first N characters used, 0: all')
    a('--val-frac', type=float, default=0, help='share held out at the end, scored at reports')
    a('--cell', choices=CELLS, default='rnn', help='the recurrent cell')
    a('--hiddens', type=int, default=256, help='hidden units')
    a('--activation', choices=['relu', 'tanh'], default='relu', help="rnn's φ (lstm: none)")
    a('--sampler', choices=['random', 'consecutive', 'both'], default='both', help='both: the two')
    a('--epochs', type=int, default=1000, help='epochs for each sampler')
    a('--num-steps', type=int, default=35, help='time steps per window')
    a('--batch-size', type=int, default=32, help='windows per minibatch')
    a('--optimizer', choices=['sgd', 'adam'], default='sgd', help="sgd, or the book's Adam")
    a('--lr', type=float, help='learning rate (default: 100 for sgd, 0.002 for adam)')
    a('--clip', type=float, help='clipping threshold θ (default: 0.01 for sgd, 1 for adam)')
    a('--dropout', type=float, default=0, help='in training, P(input or output state dropped)')
    a('--weight-decay', type=float, default=0, help='each step also takes lr × W of each parameter')
    a('--pred-period', type=int, default=100, help='report every N epochs')
    a('--pred-len', type=int, default=50, help='characters written per prefix')
    a('--prefixes', nargs='+', default=['分开', '不分开'], help='beginnings to continue')
    a('--temperature', type=float, default=0, help='0: the likeliest; T: from softmax(O / T)')
    a('--seed', type=int, help='the same seed, the same run (default: a new one)')
    args = p.parse_args(argv)
    for name in ['epochs', 'num_steps', 'batch_size', 'pred_period', 'hiddens']:
        if getattr(args, name) < 1:
            p.error('--%s must be 1 or more' % name.replace('_', '-'))
    for bad, message in [
            (min(args.corpus_chars, args.pred_len) < 0, '--corpus-chars, --pred-len: 0 or more'),
            (not all(x is None or np.finfo(np.float32).tiny <= x <= np.finfo(np.float32).max
                     for x in [args.lr, args.clip, args.weight_decay or None]),  # float32's range
             '--lr, --clip and --weight-decay (but 0) must be from 1.1755e-38 to 3.4028e+38'),
            (not 0 <= args.temperature < math.inf, '--temperature must be 0 or more, and finite'),
            (not (0 <= args.val_frac < 1 and 0 <= args.dropout < 1),
             '--val-frac and --dropout must be at least 0 and below 1'),
            (args.hiddens ** 2 >= 2 ** 31, '--hiddens is too large: W_hh would hold 2³¹ numbers '
             "or more, past MXNet's limit")]:
        if bad:
            p.error(message)
    return args


def main(argv=None):
    """The command line: the text and its checks, then a model trained for each sampler. Bad
    input ends it in one line (status 1); Ctrl-C at once, in one line too (status 130)."""
    args = parse_args(argv)
    try:
        if args.seed is not None:  # random: the windows' order; MXNet: weights, dropout, draws
            random.seed(args.seed)
            mx.random.seed(args.seed)
        corpus, char_to_idx, idx_to_char, V = load_data_jay_lyrics(args.data, args.corpus_chars)
        n_val = int(len(corpus) * args.val_frac)
        train, val = corpus[:len(corpus) - n_val], corpus[len(corpus) - n_val:]
        unknown = sorted(set(''.join(args.prefixes)) - set(char_to_idx))  # now, not at a report
        if unknown or '' in args.prefixes:
            default = ' (the default)' if args.prefixes == ['分开', '不分开'] else ''
            raise ValueError("--prefixes %s%s: each 1 or more of the text's characters (not %s)" % (
                ' '.join(args.prefixes), default, ' '.join(map(repr, unknown)) or "''"))
        get_params, init_state, cell = CELLS[args.cell]
        keywords = {'activation': args.activation} if args.cell == 'rnn' else {}
        cell = functools.partial(cell, drop_probs=(args.dropout, args.dropout), **keywords)
        print('%d characters to train on, vocabulary %d: %s of %d hidden units, %s' % (
            len(train), V, args.cell, args.hiddens, args.optimizer))
        samplers = ['random', 'consecutive'] if args.sampler == 'both' else [args.sampler]
        for i, sampler in enumerate(samplers, 1):
            params = get_params(V, args.hiddens, ctx)  # a new model for each
            adam_state = (init_adam_states(params), {'t': 1}) if args.optimizer == 'adam' else None
            print('== %s sampling (%d of %d), %d epoch%s, on %s' % (sampler, i, len(samplers),
                  args.epochs, '' if args.epochs == 1 else 's', ctx), flush=True)
            train_and_predict_rnn(
                cell, lambda: params, init_state, args.hiddens, V, ctx, train,
                idx_to_char, char_to_idx, sampler == 'random', args.epochs, args.num_steps,
                args.lr or {'sgd': 100, 'adam': 0.002}[args.optimizer],
                args.clip or {'sgd': 0.01, 'adam': 1}[args.optimizer], args.batch_size,
                args.pred_period, args.pred_len, args.prefixes, temperature=args.temperature,
                val_indices=val if args.val_frac else None, weight_decay=args.weight_decay,
                adam_state=adam_state)
    except (KeyboardInterrupt, Exception) as e:  # Ctrl-C; bad input, too little memory, ...
        if KeyboardInterrupt in (type(e), type(e.__context__)):  # nd.array makes it a TypeError
            if sys.stderr:  # closed (2>&-): None, and print() would write to stdout
                print('charrnn: interrupted', file=sys.stderr)
            sys.exit(130)
        with contextlib.suppress(mx.base.MXNetError):  # queued failures: now, not at exit
            nd.waitall()
        lines = str(e).strip().splitlines() or [type(e).__name__]  # MXNet's last says what
        sys.exit('charrnn: error: %s' % (e if isinstance(e, (ValueError, OSError)) else lines[-1]))


if __name__ == '__main__':
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head: end quietly, as Unix tools do
    main()
