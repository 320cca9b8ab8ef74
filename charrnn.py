"""charrnn: the char-RNN of Dive into Deep Learning (动手学深度学习), from scratch on MXNet,
in one file. It learns Jay Chou's lyrics and writes new ones; every piece keeps the book's name
and positional signature, so `import charrnn as d2l` runs the chapter as is."""
import argparse
import collections
import contextlib
import ctypes
import datetime
import functools
import hashlib
import importlib.metadata
import inspect
import io
import json
import math
import os
import pathlib
import random
import signal
import sys
import tempfile
import threading
import time
import zipfile
import zlib


def interrupted(*_):
    """Ctrl-C where no model is at stake: one line, and the exit status of a shell's Ctrl-C."""
    print('\ncharrnn: interrupted', file=sys.stderr)
    sys.exit(130)


if __name__ == '__main__':  # the imports below take seconds: Ctrl-C during them too
    signal.signal(signal.SIGINT, interrupted)

import numpy as np  # noqa: E402 (after the Ctrl-C handler)

# MXNet 1.9.1 uses np.bool, removed in numpy 1.24 (which Python 3.12 needs): put it back.
if np.lib.NumpyVersion(np.__version__) >= '1.24.0':
    np.bool = bool


# OpenMP threads spin while they wait, so one without a core stalls all (5 times slower beside one
# busy program): a thread for each core (MXNet's guess) the runnable tasks leave free, at least one.
SMT = pathlib.Path('/sys/devices/system/cpu/smt/active')
if os.path.exists('/proc/loadavg'):  # Linux; its 4th field counts the tasks runnable, this one too
    others = int(pathlib.Path('/proc/loadavg').read_text().split()[3].split('/')[0]) - 1
    cpus = len(os.sched_getaffinity(0))  # those this process may use (taskset, containers)
    cores = cpus // (1 if SMT.exists() and SMT.read_text().strip() == '0' else 2)
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, min(cores, cpus - others))))
CUDA_LIBS = ('libcudart.so.11.0', 'libcublasLt.so.11', 'libcublas.so.11', 'libcufft.so.10',
             'libcurand.so.10', 'libcusolver.so.11', 'libnvrtc.so.11.2', 'libnvToolsExt.so.1',
             'libnccl.so.2', 'libcudnn.so.8')  # those of pip's nvidia-*-cu11 wheels, in load order
with contextlib.suppress(importlib.metadata.PackageNotFoundError):  # the CPU wheel: no CUDA
    site = pathlib.Path(importlib.metadata.distribution('mxnet-cu112').locate_file(''))
    os.environ.setdefault('MXNET_CUDNN_LIB_CHECKING', '0')  # cuDNN 8.9 from PyPI, built for 8.1
    found = {p.name: str(p) for p in site.glob('nvidia/*/lib/*.so*')}
    for name in [n for n in CUDA_LIBS if n in found]:  # mxnet-cu112 looks in its own folder only
        ctypes.CDLL(found[name], mode=ctypes.RTLD_GLOBAL)
try:
    import mxnet as mx
    from mxnet import autograd, nd
except Exception as e:  # no mxnet, a library it needs (OSError), numpy 2 (AttributeError), ...
    advice = 'pip install -r requirements.txt (mxnet 1.9.1 needs Python 3.8 to 3.13)'
    if np.lib.NumpyVersion(np.__version__) >= '2.0.0':
        advice = "MXNet 1.9.1 needs numpy<2: pip install 'numpy<2' (Python 3.14+: use a 3.12)"
    elif 'libarmpl' in str(e):
        advice = 'install Arm Performance Libraries first (see the README), or use x86-64'
    message = 'cannot import mxnet (%s: %s): %s' % (type(e).__name__, str(e).split('\n')[0], advice)
    if __name__ == '__main__':
        sys.exit('charrnn: error: ' + message)
    raise ImportError(message) from e


def try_gpu():
    """gpu(0) if it runs a kernel (the book only allocates), else cpu(), saying why in one line."""
    if mx.context.num_gpus() == 0:  # asking a CPU-only MXNet for mx.gpu() logs an error
        return mx.cpu()
    try:
        (nd.ones((2,), ctx=mx.gpu()) * 2).asnumpy()
    except mx.base.MXNetError as e:
        print('charrnn: using the CPU, the GPU is unusable: %s' % str(e).strip().splitlines()[-1],
              file=sys.stderr)  # MXNet's last line says what went wrong
        return mx.cpu()
    return mx.gpu()


ctx = try_gpu()
DATA_URL = 'https://github.com/d2l-ai/d2l-zh/raw/v1/data/jaychou_lyrics.txt.zip'
DATA_SHA1 = '9529987e701a4f37048ab778270a5dde9a762a0b'
DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jaychou_lyrics.txt.zip')
FLOAT32_MAX = float(np.finfo(np.float32).max)  # MXNet takes lr, θ, T as float32
BASELINE_CHARS = 1_000_000  # the 5-gram counts at most these: more would take minutes, GBs


# ------------------------------------------------------------------------------ data 数据
def download(url=DATA_URL, path=DATA_PATH, sha1=DATA_SHA1):
    """Fetch url to path, keeping it only if its SHA-1 matches."""
    import urllib.request  # here: it takes long to import, and only download needs it
    try:
        data = urllib.request.urlopen(url, timeout=60).read()
    except OSError as e:
        raise FileNotFoundError('%s is missing and could not be downloaded from %s (%s): copy '
                                'it there, or pass --data PATH' % (path, url, e)) from None
    digest = hashlib.sha1(data).hexdigest()
    if digest != sha1:
        raise ValueError('%s has SHA-1 %s, not %s: not kept' % (url, digest, sha1))
    write_file(path, data)
    return path


def read_text(path=None, num_chars=10000):
    """The first num_chars characters (None: all) of a UTF-8 .txt or of the .txt in a .zip, a
    space for each line break (Unix, Windows, old Mac). None: the lyrics (downloaded if absent)."""
    if path is None:
        path = DATA_PATH if os.path.exists(DATA_PATH) else download()
    try:
        if str(path).lower().endswith('.zip'):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.lower().endswith('.txt')]
                if not names:
                    raise ValueError('%s holds no .txt file' % path)
                raw = z.read(names[0])
        else:
            raw = pathlib.Path(path).read_bytes()
        text = raw.decode('utf-8-sig')  # a byte-order mark is not a character of the text
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError,
            UnicodeDecodeError) as e:  # corrupt, encrypted, Deflate64, cut short, not UTF-8
        raise ValueError('%s is not a UTF-8 .txt, or a .zip holding one (%s: %s)'
                         % (path, type(e).__name__, e)) from None
    return text.replace('\r\n', '\n').replace('\r', '\n').replace('\n', ' ')[:num_chars]


def build_vocab(text):
    """idx_to_char: the text's characters sorted, the same in every process (list(set()) isn't)."""
    idx_to_char = sorted(set(text))
    if len(idx_to_char) < 2:
        raise ValueError('the text has %d distinct characters, fewer than 2' % len(idx_to_char))
    return idx_to_char


def encode(text, char_to_idx):
    """The indices of text's characters; ValueError if it is empty or has unknown ones (named)."""
    if not text:
        raise ValueError('an empty text or prefix: give at least one character')
    unknown = sorted(set(text) - set(char_to_idx))
    if unknown:
        raise ValueError('not in the vocabulary: %s' % ' '.join(repr(c) for c in unknown))
    return [char_to_idx[c] for c in text]


def load_data_jay_lyrics(path=None, num_chars=10000):
    """(corpus_indices, char_to_idx, idx_to_char, vocab_size), the vocabulary sorted."""
    text = read_text(path, num_chars)
    idx_to_char = build_vocab(text)
    char_to_idx = {c: i for i, c in enumerate(idx_to_char)}
    return encode(text, char_to_idx), char_to_idx, idx_to_char, len(idx_to_char)


def data_iter_random(corpus_indices, batch_size, num_steps, ctx=None):
    """随机采样: disjoint windows in random order; Y is X shifted by one character."""
    corpus = np.asarray(corpus_indices)
    starts = np.arange((len(corpus) - 1) // num_steps) * num_steps
    random.shuffle(starts)
    for i in range(len(starts) // batch_size):
        window = starts[i * batch_size:(i + 1) * batch_size, None] + np.arange(num_steps)
        yield nd.array(corpus[window], ctx=ctx), nd.array(corpus[window + 1], ctx=ctx)


def data_iter_consecutive(corpus_indices, batch_size, num_steps, ctx=None):
    """相邻采样: the corpus cut into batch_size rows; batch k+1 goes on from batch k in each."""
    batch_len = len(corpus_indices) // batch_size
    rows = nd.array(corpus_indices[:batch_size * batch_len], ctx=ctx).reshape((batch_size, -1))
    for i in range(0, (batch_len - 1) // num_steps * num_steps, num_steps):
        yield rows[:, i:i + num_steps], rows[:, i + 1:i + 1 + num_steps]


def check_minibatch(num_chars, is_random_iter, batch_size, num_steps):
    """ValueError unless num_chars fill a minibatch of windows (random) or of rows (consecutive)."""
    need = batch_size * num_steps + 1 if is_random_iter else batch_size * (num_steps + 1)
    if num_chars < need:
        raise ValueError('no minibatch: %s sampling needs %d characters or more for batch_size %d '
                         'and num_steps %d; the training text has %d' % (
                             'random' if is_random_iter else 'consecutive', need, batch_size,
                             num_steps, num_chars))


# -------------------------------------------------------------- model, prediction 模型、预测
def to_onehot(X, size):
    """(batch, num_steps) indices -> a list of num_steps one-hot (batch, size) matrices."""
    return list(nd.one_hot(X.T, size))  # one operator; the items are views of its result


def affine_steps(X, W, b, num_steps):
    """X W + b for all the steps stacked in X: one large product (FullyConnected), then split."""
    Z = nd.FullyConnected(X, W.T, b, num_hidden=W.shape[1])
    return list(nd.split(Z, num_outputs=num_steps, axis=0)) if num_steps > 1 else [Z]


def times(W):
    """H -> H W by FullyConnected (oneDNN; nd.dot's OpenBLAS is slower), Wᵀ made once."""
    W_T = W.T
    return lambda H: nd.FullyConnected(H, W_T, no_bias=True, num_hidden=W.shape[1])


def dropout(X, drop_prob):
    """丢弃法: each element zeroed with probability drop_prob, the rest divided by 1 - drop_prob."""
    if not 0 <= drop_prob <= 1:
        raise ValueError('drop_prob must be in [0, 1], not %r' % (drop_prob,))
    if drop_prob == 1:
        return X.zeros_like()
    mask = nd.random.uniform(0, 1, X.shape, ctx=X.context) < 1 - drop_prob
    return mask * X / (1 - drop_prob)


def drop(X, drop_prob):
    """dropout(X, drop_prob) while training (in autograd.record()), else X itself."""
    return dropout(X, drop_prob) if drop_prob and autograd.is_training() else X


def init_params(ctx, *shapes):
    """Parameters of these shapes, gradients attached: weights from N(0, 0.01²), biases zero."""
    params = [nd.random.normal(scale=0.01, shape=shape, ctx=ctx) if len(shape) == 2
              else nd.zeros(shape, ctx=ctx) for shape in shapes]
    for param in params:
        param.attach_grad()
    return params


def get_params(vocab_size, num_hiddens, ctx):
    """W_xh, W_hh, b_h, then the output layer W_hq, b_q."""
    V, H = vocab_size, num_hiddens
    return init_params(ctx, (V, H), (H, H), (H,), (H, V), (V,))


def init_rnn_state(batch_size, num_hiddens, ctx):
    """(H,): a tuple, as states with several parts (LSTM) are."""
    return (nd.zeros((batch_size, num_hiddens), ctx=ctx),)


def rnn(inputs, state, params, activation='relu', drop_probs=(0, 0)):
    """循环神经网络: H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q; φ ReLU (the
    notebook's) or tanh (the book's); drop_probs: dropout of X_t and of H_t → O_t while training."""
    if activation not in ('relu', 'tanh'):
        raise ValueError("activation must be 'relu' or 'tanh', not %r" % (activation,))
    phi = nd.relu if activation == 'relu' else nd.tanh
    W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    H_W_hh = times(W_hh)
    X = drop(nd.concat(*inputs, dim=0), drop_probs[0])  # all steps: X W_xh + b_h, then split
    Hs = []
    for XW_t in affine_steps(X, W_xh, b_h, len(inputs)):
        H = phi(XW_t + H_W_hh(H))
        Hs.append(H)
    return affine_steps(drop(nd.concat(*Hs, dim=0), drop_probs[1]), W_hq, b_q, len(Hs)), (H,)


def get_gru_params(vocab_size, num_hiddens, ctx):
    """W_x*, W_h*, b_* of the update gate z, reset gate r and candidate h; then W_hq, b_q."""
    V, H = vocab_size, num_hiddens
    return init_params(ctx, *[(V, H), (H, H), (H,)] * 3, (H, V), (V,))


def gru(inputs, state, params, drop_probs=(0, 0)):
    """门控循环单元: Z = σ(X W_xz + H W_hz + b_z), R = σ(X W_xr + H W_hr + b_r),
    H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h), H = Z ⊙ H + (1 - Z) ⊙ H̃; drop_probs as in rnn."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    X = drop(nd.concat(*inputs, dim=0), drop_probs[0])  # all steps: X W_x* + b_*, then split
    XZ, XR, XH = [affine_steps(X, W, b, len(inputs)) for W, b in
                  [(W_xz, b_z), (W_xr, b_r), (W_xh, b_h)]]
    hz, hr, hh = times(W_hz), times(W_hr), times(W_hh)
    Hs = []
    for xz, xr, xh in zip(XZ, XR, XH):
        Z = nd.sigmoid(xz + hz(H))
        R = nd.sigmoid(xr + hr(H))
        H_tilda = nd.tanh(xh + hh(R * H))
        H = Z * H + (1 - Z) * H_tilda
        Hs.append(H)
    return affine_steps(drop(nd.concat(*Hs, dim=0), drop_probs[1]), W_hq, b_q, len(Hs)), (H,)


def get_lstm_params(vocab_size, num_hiddens, ctx):
    """W_x*, W_h*, b_* of the gates i, f, o and the candidate memory c, then W_hq, b_q."""
    V, H = vocab_size, num_hiddens
    return init_params(ctx, *[(V, H), (H, H), (H,)] * 4, (H, V), (V,))


def init_lstm_state(batch_size, num_hiddens, ctx):
    """(H, C): the hidden state and the memory cell, two arrays."""
    return tuple(nd.zeros((batch_size, num_hiddens), ctx=ctx) for _ in range(2))


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


init_gru_state = init_rnn_state  # a GRU's state is an RNN's: (H,)
CELLS = {'rnn': (get_params, init_rnn_state, rnn), 'gru': (get_gru_params, init_gru_state, gru),
         'lstm': (get_lstm_params, init_lstm_state, lstm)}


def predict_rnn(prefix, num_chars, rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx,
                idx_to_char, char_to_idx, temperature=0):
    """prefix and num_chars more: the likeliest (temperature 0), or drawn from softmax(O / T)."""
    if not 0 <= temperature < math.inf:
        raise ValueError('the temperature must be 0 or more, and finite, not %r' % temperature)
    output = encode(prefix, char_to_idx)
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
    """The longest stretch of written found in text (a stretch found grows, one not moves on)."""
    best = ''
    i = 0
    while i + len(best) < len(written):
        if written[i:i + len(best) + 1] in text:
            best = written[i:i + len(best) + 1]
        else:
            i += 1
    return best


def sample_line(prefix, written, text=None):
    """' - ', the continuation, and its longest stretch copied from text: [copied 12/50]."""
    if text is None:  # a checkpoint of an earlier charrnn, which kept no text
        return ' - ' + written
    copied = longest_copy(written[len(prefix):], text)
    return ' - %s  [copied %d/%d]' % (written, len(copied), len(written) - len(prefix))


# ------------------------------------------------------------------------ training 训练
def sequence_loss(outputs, Y):
    """Mean cross-entropy per character, exact for any finite logits (log_softmax, not log(p))."""
    return -nd.pick(nd.log_softmax(nd.concat(*outputs, dim=0)), Y.T.reshape((-1,))).mean()


def grad_clipping(params, theta, ctx):
    """裁剪梯度: g <- min(θ / ||g||, 1) g, g all the gradients as one vector, on the device."""
    grads = [p.grad for p in params]
    norm = nd.multi_sum_sq(*grads, num_arrays=len(grads)).sum().sqrt()
    scale = nd.minimum(theta / norm, 1)
    for g in grads:
        g[:] *= scale


def sgd(params, lr, batch_size, wd=0):
    """p <- p - lr (grad / batch_size + wd p), wd weight decay (权重衰减): one operator, unsplit."""
    n = len(params)
    nd.multi_sgd_update(*[a for p in params for a in (p, p.grad)], lrs=[lr] * n, wds=[wd] * n,
                        rescale_grad=1 / batch_size, num_weights=n, out=params)


def init_adam_states(params):
    """Adam's moving averages for each parameter, at zero: v of the gradient, s of its square."""
    return [(p.zeros_like(), p.zeros_like()) for p in params]


def adam(params, states, hyperparams):
    """The book's Adam: v <- β1 v + (1 - β1) g, s <- β2 s + (1 - β2) g², corrected by 1 - β^t at
    step t, then p <- p - lr (v̂ / (√ŝ + ε) + wd p): hyperparams lr, t, wd (decoupled, AdamW)."""
    beta1, beta2, eps = 0.9, 0.999, 1e-6
    lr, t, wd = hyperparams['lr'], hyperparams['t'], hyperparams.get('wd', 0)
    for p, (v, s) in zip(params, states):
        v[:] = beta1 * v + (1 - beta1) * p.grad
        s[:] = beta2 * s + (1 - beta2) * p.grad.square()
        v_bias_corr = v / (1 - beta1 ** t)
        s_bias_corr = s / (1 - beta2 ** t)
        p[:] -= lr * (v_bias_corr / (s_bias_corr.sqrt() + eps) + wd * p)
    hyperparams['t'] += 1


def evaluate_perplexity(rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx,
                        corpus_indices, num_steps):
    """困惑度 of held-out text read in order, the state carried from window to window."""
    windows = list(data_iter_consecutive(corpus_indices, 1, num_steps, ctx))
    if not windows:
        raise ValueError('held-out text shorter than a window: give more than num_steps')
    state = init_rnn_state(1, num_hiddens, ctx)
    loss_sum = nd.zeros(1, ctx=ctx)
    for X, Y in windows:
        outputs, state = rnn(to_onehot(X, vocab_size), state, params)
        loss_sum += sequence_loss(outputs, Y)
    return math.exp(loss_sum.asscalar() / len(windows))


def in_notebook():
    """True in a Jupyter kernel, whose output streams are ipykernel's."""
    return type(sys.stdout).__module__.startswith('ipykernel')


def show_status(line=''):
    """Rewrite the status line ('' erases it): a terminal's, a notebook's (\r); no log's, pipe's."""
    if in_notebook():  # padded: a shorter line covers a longer one
        sys.stdout.write('\r' + line.ljust(100) + ('' if line else '\r'))
        sys.stdout.flush()
    elif sys.stderr.isatty():
        columns = os.get_terminal_size(sys.stderr.fileno()).columns or 1000  # 0: not known
        sys.stderr.write('\r\x1b[K' + line[:columns - 1])
        sys.stderr.flush()


def train_and_predict_rnn(rnn, get_params, init_rnn_state, num_hiddens, vocab_size, ctx,
                          corpus_indices, idx_to_char, char_to_idx, is_random_iter, num_epochs,
                          num_steps, lr, clipping_theta, batch_size, pred_period, pred_len,
                          prefixes, temperature=0, val_indices=None, history=None, on_report=None,
                          weight_decay=0, adam_state=None):
    """Clipped gradients, then SGD or, given adam_state ((init_adam_states(params), {'t': 1})),
    Adam. Every pred_period epochs and at the end: on_report(epoch, a copy of params, history),
    then the report; history gets 'train' (each epoch's perplexity), 'val' ((epoch, perplexity))."""
    if not (num_epochs > 0 and pred_period > 0):
        raise ValueError('num_epochs and pred_period must be 1 or more')
    check_minibatch(len(corpus_indices), is_random_iter, batch_size, num_steps)
    sampler = 'random' if is_random_iter else 'consecutive'
    data_iter_fn = data_iter_random if is_random_iter else data_iter_consecutive
    sized = inspect.signature(get_params).parameters  # the book's get_params() reads globals
    params = get_params(vocab_size, num_hiddens, ctx) if sized else get_params()
    if adam_state:
        adam_state[1].update(lr=lr, wd=weight_decay)
    text = ''.join(idx_to_char[i] for i in corpus_indices)  # what a continuation may copy
    history = {} if history is None else history
    history.update(train=[], val=[])
    start = time.time()
    for epoch in range(num_epochs):
        if not is_random_iter:  # 相邻采样: one state runs through the epoch
            state = init_rnn_state(batch_size, num_hiddens, ctx)
        loss_sum = nd.zeros(1, ctx=ctx)
        n = 0
        tic = time.time()
        for X, Y in data_iter_fn(corpus_indices, batch_size, num_steps, ctx):
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
            n += 1
        mean_loss = loss_sum.asscalar() / n  # the epoch's one wait for the device
        if not mean_loss < 700:  # NaN, or a perplexity past float range: training diverged
            raise FloatingPointError('the loss became %g in epoch %d: lower the learning rate '
                                     '(%g) or θ (%g)' % (mean_loss, epoch + 1, lr, clipping_theta))
        history['train'].append(math.exp(mean_loss))
        seconds = time.time() - tic
        elapsed = time.time() - start
        speed = '%s chars/s' % format(n * batch_size * num_steps / seconds, ',.0f')
        eta = datetime.timedelta(seconds=round(elapsed / (epoch + 1) * (num_epochs - epoch - 1)))
        show_status('%s: epoch %d/%d, perplexity %.2f, %s, ETA %s' % (
            sampler, epoch + 1, num_epochs, history['train'][-1], speed, eta))
        if (epoch + 1) % pred_period and epoch + 1 < num_epochs:
            continue
        line = 'epoch %d, perplexity %.2f' % (epoch + 1, history['train'][-1])
        if val_indices is not None:
            history['val'].append((epoch + 1, evaluate_perplexity(
                rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx, val_indices, num_steps)))
            line += ', val perplexity %.2f' % history['val'][-1][1]
        if on_report:  # first: a model it saves is saved before anything is printed
            on_report(epoch + 1, [p.copy() for p in params], history)
        show_status()  # erased: the report starts on a clean line
        print('%s, %.2f s/epoch, %s, elapsed %s, ETA %s'
              % (line, seconds, speed, datetime.timedelta(seconds=round(elapsed)), eta), flush=True)
        for prefix in prefixes:
            written = predict_rnn(prefix, pred_len, rnn, params, init_rnn_state, num_hiddens,
                                  vocab_size, ctx, idx_to_char, char_to_idx, temperature)
            print(sample_line(prefix, written, text), flush=True)
    return params


# ------------------------------------------------- the count baseline, files 计数基线、文件
def kneser_ney(text, vocab_size, order=5):
    """插值 Kneser-Ney: prob(c, context) of an n-gram model of text. The top order counts n-grams,
    the lower ones the characters that precede them; order k takes D = n1 / (n1 + 2 n2) off each
    count (n1, n2: k-grams counted once, twice) for order k - 1; order 1 adds 0.5 to each of V."""
    raw = {k: collections.Counter(text[i:i + k] for i in range(len(text) - k + 1))
           for k in range(1, order + 1)}
    counts = {k: raw[k] if k == order else collections.Counter(g[1:] for g in raw[k + 1])
              for k in raw}
    types = {k: collections.Counter(g[:-1] for g in counts[k]) for k in raw}  # after a context
    totals = {k: collections.Counter() for k in raw}  # a context's count
    discount = {}
    for k in range(2, order + 1):
        for gram, n in counts[k].items():
            totals[k][gram[:-1]] += n
        n1 = sum(n == 1 for n in counts[k].values())
        n2 = sum(n == 2 for n in counts[k].values())
        discount[k] = n1 / (n1 + 2 * n2) if n1 else 0.5  # no k-gram seen once: the usual 0.5
    unigram_total = sum(counts[1].values()) + 0.5 * vocab_size

    def prob(c, context):
        p = (counts[1][c] + 0.5) / unigram_total
        for k in range(2, min(order, len(context) + 1) + 1):
            h = context[len(context) - k + 1:]
            if totals[k][h]:
                D = discount[k]
                p = (max(counts[k][h + c] - D, 0) + D * types[k][h] * p) / totals[k][h]
        return p
    return prob


def baseline_perplexity(train_text, val_text, vocab_size, num_steps, order=5):
    """kneser_ney(train_text) on evaluate_perplexity's targets, the context running back."""
    prob = kneser_ney(train_text, vocab_size, order)
    text = train_text + val_text
    targets = range(len(train_text) + 1, len(text) - (len(val_text) - 1) % num_steps)
    nll = -sum(math.log(prob(text[j], text[max(0, j - order + 1):j])) for j in targets)
    return math.exp(nll / len(targets))


def write_file(path, data):
    """data to a temporary file beside path, renamed to it: on failure, path is as it was."""
    target = os.path.realpath(path)  # a symbolic link is written through, not replaced
    umask = os.umask(0o22)  # read back: mkstemp makes 0600 files, open() umask's
    os.umask(umask)
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target),
                                   prefix='.%s.' % os.path.basename(target), suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
            os.chmod(tmp, os.stat(target).st_mode if os.path.exists(target) else 0o666 & ~umask)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError as e:
        raise OSError('cannot write %s (%s): it is as it was' % (path, e.strerror or e)) from None


def save_checkpoint(path, params, idx_to_char, config, adam_state=None):
    """Parameters, vocabulary, configuration and Adam's state in one .npz, by write_file."""
    arrays = {'arr_%d' % i: p.asnumpy() for i, p in enumerate(params)}
    for i, (v, s) in enumerate(adam_state[0] if adam_state else []):
        arrays.update({'adam_v_%d' % i: v.asnumpy(), 'adam_s_%d' % i: s.asnumpy()})
    config = dict(config, format='charrnn', adam_t=adam_state[1]['t'] if adam_state else None)
    buffer = io.BytesIO()  # whole in memory first: a failed write cannot leave half a zip
    np.savez(buffer, vocab=[ord(c) for c in idx_to_char], config=json.dumps(config), **arrays)
    write_file(path, buffer.getvalue())


def load_checkpoint(path, ctx):
    """(params, idx_to_char, config, adam_state): a ValueError if it makes no model, named."""
    try:
        with np.load(path) as f:
            arrays = {name: f[name] for name in f.files}
        config = json.loads(str(arrays.pop('config')))
        idx_to_char = [chr(i) for i in arrays.pop('vocab')]
        if config.pop('format', None) != 'charrnn':
            raise ValueError('it has no charrnn mark')
        get = cell_functions(config)[0]
        shapes = [p.shape for p in get(len(idx_to_char), config['hiddens'], mx.cpu())]
    except FileNotFoundError:
        raise FileNotFoundError('%s: no such file' % path) from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            mx.base.MXNetError) as e:
        raise ValueError('%s is not a charrnn checkpoint that makes a model (%s: %s)'
                         % (path, type(e).__name__, str(e).strip().splitlines()[-1])) from None
    numbered = {int(name[4:]): a for name, a in arrays.items() if name.startswith('arr_')}
    if [numbered[i].shape for i in sorted(numbered)] != shapes:
        raise ValueError('%s: its arrays do not fit a %s of %s hidden units on %d characters'
                         % (path, config['cell'], config['hiddens'], len(idx_to_char)))
    params = [nd.array(numbered[i], ctx=ctx) for i in sorted(numbered)]
    for p in params:
        p.attach_grad()
    t = config.pop('adam_t', None)
    states = [tuple(nd.array(arrays['adam_%s_%d' % (m, i)], ctx=ctx) for m in 'vs')
              for i in range(len(params))] if t else None
    return params, idx_to_char, config, (states, {'t': t}) if t else None


# ------------------------------------------------------------ pictures, notebooks 画图
def plot_perplexity(path, histories, baseline=None):
    """{label: history}'s perplexities, log scale, to path (.png, .svg, .pdf; None: PNG bytes)."""
    try:
        from matplotlib.figure import Figure  # not pyplot: no window, no display
    except ImportError as e:
        raise ImportError('the picture needs matplotlib (%s): pip install matplotlib' % e) from None
    ax = Figure(figsize=(7, 4)).add_subplot(xlabel='epoch', ylabel='perplexity', yscale='log')
    for color, (label, history) in zip(['C0', 'C1'], histories.items()):
        ax.plot(range(1, len(history['train']) + 1), history['train'], color=color,
                label=label + 'training')
        if history['val']:
            ax.plot(*zip(*history['val']), 'o--', color=color, label=label + 'held out')
    if baseline:
        ax.axhline(baseline, color='grey', linestyle=':', label='5-gram count model, held out')
    if ax.lines:
        ax.legend()
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format=os.path.splitext(path or 'a.png')[1][1:].lower(), dpi=100,
                      bbox_inches='tight')
    if path is None:
        return buffer.getvalue()
    write_file(path, buffer.getvalue())


def live_plot(baseline=None):
    """In a notebook, an on_report redrawing the perplexities under the cell; elsewhere None."""
    if not in_notebook():
        print("charrnn: live_plot() draws in a Jupyter notebook only; use --plot PATH, or "
              "plot_perplexity(path, {'': history})", file=sys.stderr)
        return None
    from IPython.display import Image, display
    handle = display(display_id=True)  # an empty output, where the picture will be

    def on_report(epoch, params, history):
        handle.update(Image(plot_perplexity(None, {'': history}, baseline)))
    return on_report


# ------------------------------------------------------------------------ command line 命令行
def parse_args(argv=None):
    """The flags, checked together; their defaults reproduce the notebook's run."""
    p = argparse.ArgumentParser(description=__doc__)
    a = p.add_argument
    a('--data', metavar='PATH', help='a UTF-8 .txt, or a .zip of one (default: the lyrics)')
    a('--corpus-chars', type=int, default=10000, help='characters used, 0: all (default: 10000)')
    a('--val-frac', type=float, default=0, help='share held out at the end, scored (default: 0)')
    a('--cell', choices=CELLS, help="rnn, gru or lstm (default: rnn, or the checkpoint's)")
    a('--hiddens', type=int, help="hidden units (default: 256, or the checkpoint's)")
    a('--activation', choices=['relu', 'tanh'], help="rnn's φ (default: relu, or checkpoint's)")
    a('--sampler', choices=['random', 'consecutive', 'both'], default='both', help='both: a model '
      'for each, one after the other, as in the notebook (default: both)')
    a('--epochs', type=int, default=1000, help='epochs for each sampler (default: 1000)')
    a('--num-steps', type=int, default=35, help='time steps per window (default: 35)')
    a('--batch-size', type=int, default=32, help='windows per minibatch (default: 32)')
    a('--optimizer', choices=['sgd', 'adam'], help="sgd or adam (default: sgd, or checkpoint's)")
    a('--lr', type=float, help="learning rate (default: sgd 100, adam 0.002, or checkpoint's)")
    a('--clip', type=float, help="gradient clipping θ (default: sgd 0.01, adam 1, or checkpoint's)")
    a('--dropout', type=float, metavar='P', help="while training, drop each input and each state "
      "that feeds the output with probability P, 0 <= P < 1 (default: 0, or the checkpoint's)")
    a('--weight-decay', type=float, metavar='W', help="every step also takes lr × W of each "
      "parameter: with sgd's lr 100, W well below 0.01 (default: 0, or the checkpoint's)")
    a('--pred-period', type=int, default=100, help='report every N epochs (default: 100)')
    a('--pred-len', type=int, default=50, help='characters to write per prefix (default: 50)')
    a('--prefixes', nargs='+', default=['分开', '不分开'], help='text to continue (default: 分开 不分开)')
    a('--temperature', type=float, default=0, help='0: the likeliest character; T > 0: drawn '
      'from softmax(O / T) (default: 0)')
    a('--seed', type=int, help='the same seed, the same run on one machine (default: none)')
    a('--ctx', choices=['auto', 'cpu', 'gpu'], default='auto', help='auto (the default): a working '
      'GPU, else the CPU')
    a('--save', metavar='PATH', help='keep the model of --sampler random or consecutive, in a new '
      'file or the --load file: with --val-frac the best, else the last')
    a('--load', metavar='PATH', help='start from this checkpoint: its model, vocabulary and '
      'training settings')
    a('--generate', action='store_true', help='with --load: only write continuations')
    a('--plot', metavar='PATH', help='draw the perplexities to a .png, .svg or .pdf')
    args = p.parse_args(argv)
    unused = sorted('--' + name.replace('_', '-') for name, value in vars(args).items()
                    if value != p.get_default(name) and name not in (
                        'cell', 'hiddens', 'activation', 'prefixes', 'pred_len', 'temperature',
                        'seed', 'ctx', 'load', 'generate'))  # what --generate does not take
    for name in ['epochs', 'num_steps', 'batch_size', 'lr', 'clip', 'pred_period', 'hiddens']:
        if getattr(args, name) is not None and not getattr(args, name) > 0:  # NaN too
            p.error('--%s must be greater than 0' % name.replace('_', '-'))
    for name in ['lr', 'clip', 'temperature', 'weight_decay']:  # MXNet takes them as float32
        if getattr(args, name) is not None and not abs(getattr(args, name)) < FLOAT32_MAX:
            p.error('--%s must be finite and below %.3g' % (name.replace('_', '-'), FLOAT32_MAX))
    for name in ['data', 'save', 'load', 'plot']:
        if getattr(args, name) == '':
            p.error('--%s needs a path, not an empty one' % name)
    for bad, why in [
            (min(args.corpus_chars, args.pred_len) < 0, '--corpus-chars, --pred-len: 0 or more'),
            (args.temperature < 0, '--temperature must be 0 or more'),
            (not 0 <= args.val_frac < 1, '--val-frac must be at least 0 and below 1'),
            (not 0 <= (args.dropout or 0) < 1, '--dropout must be at least 0 and below 1'),
            ((args.weight_decay or 0) < 0, '--weight-decay must be 0 or more'),
            (args.plot and os.path.splitext(args.plot)[1].lower() not in ('.png', '.svg', '.pdf'),
             '--plot %s: the picture is a .png, .svg or .pdf' % args.plot),
            (args.generate and not args.load, '--generate needs --load'),
            (args.generate and unused, '--generate trains nothing: no ' + ', '.join(unused)),
            ((args.save or args.load) and not args.generate and args.sampler == 'both',
             '--save and --load take one model: --sampler random or consecutive')]:
        if bad:
            p.error(why)
    return args


def model_config(args, saved=None):
    """The model: --load's (flags may repeat, not contradict it); how it trains: flags, --load's."""
    config = dict(saved or {'cell': 'rnn', 'hiddens': 256, 'activation': 'relu'})
    cell = args.cell or config['cell']
    if args.activation and cell != 'rnn':
        raise ValueError('--activation is for --cell rnn only: a %s has no φ to choose' % cell)
    for key in ['cell', 'hiddens', 'activation']:
        given = getattr(args, key)
        if saved and given not in (None, saved.get(key)):
            raise ValueError('--%s %s contradicts the checkpoint (%s)' % (key, given, saved[key]))
        config[key] = config.get(key) if given is None else given
    if cell != 'rnn':
        config.pop('activation')
    if args.optimizer not in (None, config.get('optimizer')):  # another one: its own lr and θ
        config = {k: v for k, v in config.items() if k not in ('lr', 'clip')}
    chosen = ['optimizer', 'lr', 'clip', 'dropout', 'weight_decay']
    config.update({key: getattr(args, key) for key in chosen if getattr(args, key) is not None})
    optimizer = config.setdefault('optimizer', 'sgd')
    config.setdefault('lr', {'sgd': 100, 'adam': 0.002}[optimizer])
    config.setdefault('clip', {'sgd': 0.01, 'adam': 1}[optimizer])
    return dict({'dropout': 0, 'weight_decay': 0}, **config)


def cell_functions(config):
    """(get_params, init_state, cell) of config: its cell, with an rnn's activation and dropout."""
    get, init_state, cell = CELLS[config['cell']]
    keywords = {'activation': config['activation']} if config['cell'] == 'rnn' else {}
    if config.get('dropout'):  # no dropout: the cell as the book calls it
        keywords['drop_probs'] = (config['dropout'],) * 2
    return get, init_state, functools.partial(cell, **keywords)


def write_continuations(args, config, params, idx_to_char, char_to_idx, device):
    """A line for each of --prefixes continued by --pred-len characters (sample_line)."""
    _, init_state, cell = cell_functions(config)
    for prefix in args.prefixes:
        written = predict_rnn(prefix, args.pred_len, cell, params, init_state, config['hiddens'],
                              len(idx_to_char), device, idx_to_char, char_to_idx,
                              args.temperature)
        print(sample_line(prefix, written, config.get('text')), flush=True)


def run(args):
    """The command line's work, in order; bad input raises ValueError, OSError, ImportError."""
    if args.seed is not None:  # random: the shuffle; MXNet: weights, dropout, draws
        random.seed(args.seed)
        mx.random.seed(args.seed)
    if args.ctx == 'gpu' and ctx.device_type != 'gpu':
        raise ValueError('--ctx gpu: MXNet sees %d GPUs, none it can use' % mx.context.num_gpus())
    device = {'auto': ctx, 'cpu': mx.cpu(), 'gpu': mx.gpu()}[args.ctx]
    params, idx_to_char, saved, adam_state = (load_checkpoint(args.load, device) if args.load
                                              else [None] * 4)
    config = model_config(args, saved)
    if config['optimizer'] != 'adam':  # --optimizer sgd on an Adam checkpoint: SGD, truly
        adam_state = None
    text = None if args.generate else read_text(args.data, args.corpus_chars or None)
    idx_to_char = idx_to_char or build_vocab(text)
    char_to_idx = {c: i for i, c in enumerate(idx_to_char)}
    for prefix in args.prefixes:  # a bad prefix stops the run now, not at the first report
        encode(prefix, char_to_idx)
    if args.generate:
        write_continuations(args, config, params, idx_to_char, char_to_idx, device)
        return
    if args.save and os.path.exists(args.save) and not (args.load and os.path.samefile(
            args.save, args.load)):  # nothing but the --load file is ever overwritten
        raise FileExistsError('--save %s exists: give a new name, or --load it to train it on'
                              % args.save)
    try:  # a trial, not after hours of training: a new file can be made there
        if args.save:
            tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(args.save))).close()
    except OSError as e:
        raise OSError('cannot write %s (%s)' % (args.save, e.strerror)) from None
    if args.plot:  # an empty picture, now: matplotlib is there and the file can be written
        plot_perplexity(args.plot, {})
    corpus = encode(text, char_to_idx)
    n_val = int(len(corpus) * args.val_frac)
    if args.val_frac and n_val <= args.num_steps:
        raise ValueError('--val-frac %g holds out %d characters: it must hold out more than '
                         '--num-steps (%d)' % (args.val_frac, n_val, args.num_steps))
    train, val = corpus[:len(corpus) - n_val], corpus[len(corpus) - n_val:]
    samplers = ['random', 'consecutive'] if args.sampler == 'both' else [args.sampler]
    for sampler in samplers:  # every sampler's minimum checked before the first epoch
        check_minibatch(len(train), sampler == 'random', args.batch_size, args.num_steps)
    print('%d characters, vocabulary %d: %s of %d hidden units, %s' % (
        len(text), len(char_to_idx), config['cell'], config['hiddens'], config['optimizer']))
    baseline = None
    if val:  # the count model's score on the same targets: the one for a network to beat
        scored = val[1:len(val) - (len(val) - 1) % args.num_steps]
        bounded = len(train) > BASELINE_CHARS  # a longer text's counts would take minutes, GBs
        baseline = baseline_perplexity(text[max(0, len(train) - BASELINE_CHARS):len(train)],
                                       text[len(train):], len(char_to_idx), args.num_steps)
        seen = set(train)
        print('held out: the last %d characters, %d of them scored, %d unseen in training; a '
              '5-gram count model%s: val perplexity %.2f' % (
                  len(val), len(scored), sum(i not in seen for i in scored),
                  ' of the last %d training characters' % BASELINE_CHARS if bounded else '',
                  baseline), flush=True)
    config['text'] = text[:len(train)]  # checkpoints keep it: --generate checks copies in it
    get, init_state, cell = cell_functions(config)
    best = math.inf if val else None  # the held-out perplexity a model must beat to be saved
    if args.save and val and os.path.exists(args.save):  # then it is the --load file
        best = evaluate_perplexity(cell, params, init_state, config['hiddens'], len(idx_to_char),
                                   device, val, args.num_steps)
        print('%s holds a model of val perplexity %.2f: only a better one replaces it'
              % (args.save, best), flush=True)
    histories = {}

    def save(params, done):  # a failed write ends the run in one line, the file as it was
        save_checkpoint(args.save, params, idx_to_char, config, adam_state)
        print(done, flush=True)

    def on_report(epoch, params, history):  # before the report is printed
        nonlocal best
        if args.save and best is None:
            save(params, 'saved to %s' % args.save)
        elif args.save and history['val'][-1][1] < best:
            best = history['val'][-1][1]
            save(params, 'saved: best val perplexity %.2f at epoch %d' % (best, epoch))
        if args.plot:
            plot_perplexity(args.plot, histories, baseline)
    try:
        for i, sampler in enumerate(samplers):
            if params is None or i > 0:  # a new model (for each sampler, as in the notebook)
                params = get(len(idx_to_char), config['hiddens'], device)
                adam_state = None
            if config['optimizer'] == 'adam' and not adam_state:
                adam_state = (init_adam_states(params), {'t': 1})
            print('== %s sampling, %d epochs, on %s' % (sampler, args.epochs, device), flush=True)
            train_and_predict_rnn(
                cell, lambda: params, init_state, config['hiddens'], len(idx_to_char), device,
                train, idx_to_char, char_to_idx, sampler == 'random', args.epochs, args.num_steps,
                config['lr'], config['clip'], args.batch_size, args.pred_period, args.pred_len,
                args.prefixes, temperature=args.temperature, val_indices=val or None,
                history=histories.setdefault(sampler + ' sampling: ', {}), on_report=on_report,
                weight_decay=config['weight_decay'], adam_state=adam_state)
    except mx.base.MXNetError as e:  # what a setting can still cause: too little memory
        raise MemoryError('%s (smaller --hiddens, --batch-size or --num-steps need less)'
                          % str(e).strip().splitlines()[-1]) from None
    except (KeyboardInterrupt, BrokenPipeError) as e:  # Ctrl-C, or the output closed (| head)
        show_status()
        if args.save and best is None:  # no held-out text chose a model: keep this one
            main_thread = threading.current_thread() is threading.main_thread()
            handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
            save(params, 'saved to %s' % args.save)  # a second Ctrl-C cannot cut the save...
            if main_thread:
                signal.signal(signal.SIGINT, handler)  # ... and ends what follows it
        elif args.save and best == math.inf:
            print('nothing saved to %s: no report has scored a model yet' % args.save, flush=True)
        if isinstance(e, BrokenPipeError):
            raise
        print('\ninterrupted: the model as it stands', flush=True)
        write_continuations(args, config, params, idx_to_char, char_to_idx, device)
        e.__traceback__ = None  # its frames' arrays are freed now, under reraise_ctrl_c
        sys.exit(130)


def reraise_ctrl_c(unraisable):
    """A Ctrl-C lost in MXNet's __del__ comes again; an array it cut short has nothing to free."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
    elif not (unraisable.exc_type is AttributeError and 'handle' in str(unraisable.exc_value)):
        sys.__unraisablehook__(unraisable)


def main(argv=None):
    """The command line: bad input ends it in one line, status 1; Ctrl-C 130; | head, 141."""
    try:
        run(parse_args(argv))
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # Python's last flush must not complain
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except (ValueError, OSError, ImportError, ArithmeticError, MemoryError) as e:
        show_status()  # a status line on the terminal is erased first
        with contextlib.suppress(mx.base.MXNetError):  # the engine's other failures, now: at
            nd.waitall()  # exit, MXNet would print them in a traceback
        sys.exit('charrnn: error: %s' % e)
    except KeyboardInterrupt as e:
        show_status()
        e.__traceback__ = None  # its frames' arrays are freed now, under reraise_ctrl_c
        interrupted()


if __name__ == '__main__':  # a script's settings; a program calling main() keeps its own
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt now
    sys.unraisablehook = reraise_ctrl_c
    sys.stdout.reconfigure(errors='replace')  # an output that cannot show Chinese: '?' for it
    main()
