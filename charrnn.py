"""charrnn: the char-RNN of Dive into Deep Learning (动手学深度学习), from scratch on MXNet,
in one file. It learns Jay Chou's lyrics and writes new ones; every piece keeps the book's name
and positional signature, so `import charrnn as d2l` runs the chapter as is."""
import argparse
import contextlib
import ctypes
import functools
import hashlib
import importlib.metadata
import inspect
import json
import math
import os
import pathlib
import random
import signal
import sys
import time
import urllib.request
import zipfile

import numpy as np

# MXNet 1.9.1 uses np.bool, removed in numpy 1.24 (which Python 3.12 needs): put it back.
if np.lib.NumpyVersion(np.__version__) >= '1.24.0':
    np.bool = bool


def omp_threads(cpus, hyperthreads, others):
    """MXNet's OpenMP threads: one a core (MXNet's own guess takes half the CPUs, as if each core
    ran two hyper-threads), but no more than the CPUs the others runnable now leave free, and at
    least one. Its threads spin while they wait for each other: with one more thread than free
    cores, every step waits for the one not running, and an epoch takes 4 to 19 times longer."""
    return max(1, min(cpus // 2 if hyperthreads else cpus, cpus - others))


SMT = pathlib.Path('/sys/devices/system/cpu/smt/active')
if os.path.exists('/proc/loadavg'):  # Linux; its 4th field: tasks runnable now, this one too
    RUNNING = int(pathlib.Path('/proc/loadavg').read_text().split()[3].split('/')[0])
    HYPERTHREADS = not SMT.exists() or SMT.read_text().strip() != '0'
    os.environ.setdefault('OMP_NUM_THREADS', str(omp_threads(os.cpu_count(), HYPERTHREADS,
                                                             RUNNING - 1)))

CUDA_LIBS = ('libcudart.so.11.0', 'libcublasLt.so.11', 'libcublas.so.11', 'libcufft.so.10',
             'libcurand.so.10', 'libcusolver.so.11', 'libnvrtc.so.11.2', 'libnvToolsExt.so.1',
             'libnccl.so.2', 'libcudnn.so.8')


def find_cuda_libs(site_packages):
    """Paths of the CUDA 11 libraries of pip's nvidia-*-cu11 wheels, in load order."""
    found = {p.name: str(p) for p in pathlib.Path(site_packages).glob('nvidia/*/lib/*.so*')}
    return [found[name] for name in CUDA_LIBS if name in found]


with contextlib.suppress(importlib.metadata.PackageNotFoundError):  # the CPU wheel: no CUDA
    site = str(importlib.metadata.distribution('mxnet-cu112').locate_file(''))
    os.environ.setdefault('MXNET_CUDNN_LIB_CHECKING', '0')  # cuDNN 8.9 from PyPI, built for 8.1
    for lib in find_cuda_libs(site):  # mxnet-cu112 looks for CUDA only in its own folder
        ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
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


def gpu_problem():
    """None if gpu(0) runs a kernel and reads it back (the book only allocates), else why not."""
    if mx.context.num_gpus() == 0:  # asking a CPU-only MXNet for mx.gpu() logs an error
        return 'no GPU visible to MXNet'
    try:
        (nd.ones((2,), ctx=mx.gpu()) * 2).asnumpy()
    except mx.base.MXNetError as e:
        return str(e).strip().splitlines()[0]
    return None


def try_gpu():
    """gpu(0) if it works, else cpu(), saying why in one line if a GPU is there but unusable."""
    problem = gpu_problem()
    if problem and mx.context.num_gpus():
        print('charrnn: using the CPU, the GPU is unusable: %s' % problem, file=sys.stderr)
    return mx.cpu() if problem else mx.gpu()


ctx = try_gpu()
DATA_URL = 'https://github.com/d2l-ai/d2l-zh/raw/v1/data/jaychou_lyrics.txt.zip'
DATA_SHA1 = '9529987e701a4f37048ab778270a5dde9a762a0b'
DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jaychou_lyrics.txt.zip')

# ------------------------------------------------------------------------------ data 数据


def download(url=DATA_URL, path=DATA_PATH, sha1=DATA_SHA1):
    """Fetch url to path, keeping it only if its SHA-1 matches."""
    try:
        data = urllib.request.urlopen(url, timeout=60).read()
    except OSError as e:
        raise FileNotFoundError('%s is missing and could not be downloaded from %s (%s): copy '
                                'it there, or pass --data PATH' % (path, url, e)) from None
    digest = hashlib.sha1(data).hexdigest()
    if digest != sha1:
        raise ValueError('%s has SHA-1 %s, not %s: not kept' % (url, digest, sha1))
    pathlib.Path(path + '.part').write_bytes(data)
    os.replace(path + '.part', path)  # renamed once whole: never half a file at path
    return path


def read_text(path=None, num_chars=10000):
    """The first num_chars characters (None: all) of a UTF-8 .txt or of the .txt in a .zip, a
    space for each line break (Unix, Windows, old Mac). None: the lyrics (downloaded if absent)."""
    if path is None:
        path = DATA_PATH if os.path.exists(DATA_PATH) else download()
    try:
        if str(path).lower().endswith('.zip'):
            with zipfile.ZipFile(path) as z:
                raw = z.read(next(n for n in z.namelist() if n.endswith('.txt')))
        else:
            raw = pathlib.Path(path).read_bytes()
        text = raw.decode('utf-8')
    except (zipfile.BadZipFile, StopIteration, UnicodeDecodeError) as e:
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

# -------------------------------------------------------------- model, prediction 模型、预测


def to_onehot(X, size):
    """(batch, num_steps) indices -> a list of num_steps one-hot (batch, size) matrices."""
    return list(nd.one_hot(X.T, size))  # one operator; the items are views of its result


def affine_steps(X, W, b, num_steps):
    """X W + b for all the steps stacked in X: one large product (FullyConnected), then split."""
    Z = nd.FullyConnected(X, W.T, b, num_hidden=W.shape[1])
    return list(nd.split(Z, num_outputs=num_steps, axis=0)) if num_steps > 1 else [Z]


def times(W):
    """The function H -> H W, for the recurrent products: FullyConnected (oneDNN) there makes an
    epoch 15-25% faster than nd.dot (OpenBLAS); it takes Wᵀ, made here once for all the steps."""
    W_T = W.T
    return lambda H: nd.FullyConnected(H, W_T, no_bias=True, num_hidden=W.shape[1])


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


init_gru_state = init_rnn_state  # a GRU's state is an RNN's: (H,)


def rnn(inputs, state, params, activation='relu'):
    """循环神经网络: H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q.
    φ is ReLU, the notebook's choice (it converged faster there), or tanh, the book's."""
    if activation not in ('relu', 'tanh'):
        raise ValueError("activation must be 'relu' or 'tanh', not %r" % (activation,))
    phi = nd.relu if activation == 'relu' else nd.tanh
    W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    H_W_hh = times(W_hh)
    Hs = []
    for XW_t in affine_steps(nd.concat(*inputs, dim=0), W_xh, b_h, len(inputs)):
        H = phi(XW_t + H_W_hh(H))
        Hs.append(H)
    return affine_steps(nd.concat(*Hs, dim=0), W_hq, b_q, len(Hs)), (H,)


def get_gru_params(vocab_size, num_hiddens, ctx):
    """W_x*, W_h*, b_* of the update gate z, reset gate r and candidate h; then W_hq, b_q."""
    V, H = vocab_size, num_hiddens
    return init_params(ctx, *[(V, H), (H, H), (H,)] * 3, (H, V), (V,))


def gru(inputs, state, params):
    """门控循环单元: Z = σ(X W_xz + H W_hz + b_z), R = σ(X W_xr + H W_hr + b_r),
    H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h), H = Z ⊙ H + (1 - Z) ⊙ H̃."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    X = nd.concat(*inputs, dim=0)  # all steps at once: X W_x* + b_*, then split per step
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
    return affine_steps(nd.concat(*Hs, dim=0), W_hq, b_q, len(Hs)), (H,)


def get_lstm_params(vocab_size, num_hiddens, ctx):
    """W_x*, W_h*, b_* of the gates i, f, o and the candidate memory c, then W_hq, b_q."""
    V, H = vocab_size, num_hiddens
    return init_params(ctx, *[(V, H), (H, H), (H,)] * 4, (H, V), (V,))


def init_lstm_state(batch_size, num_hiddens, ctx):
    """(H, C): the hidden state and the memory cell, two arrays."""
    return tuple(nd.zeros((batch_size, num_hiddens), ctx=ctx) for _ in range(2))


def lstm(inputs, state, params):
    """长短期记忆: I, F, O = σ(X W_x* + H W_h* + b_*), C̃ = tanh(X W_xc + H W_hc + b_c),
    C = F ⊙ C + I ⊙ C̃, H = O ⊙ tanh(C)."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    (H, C) = state
    X = nd.concat(*inputs, dim=0)  # all steps at once: X W_x* + b_*, then split per step
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
    return affine_steps(nd.concat(*Hs, dim=0), W_hq, b_q, len(Hs)), (H, C)


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

# ---------------------------------------------------------------- training, saving 训练、保存


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


def sgd(params, lr, batch_size):
    """param <- param - lr * grad / batch_size, in one fused operator a Ctrl-C cannot split."""
    n = len(params)
    nd.multi_sgd_update(*[a for p in params for a in (p, p.grad)], lrs=[lr] * n, wds=[0] * n,
                        rescale_grad=1 / batch_size, num_weights=n, out=params)


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


def hms(seconds):
    """h:mm:ss, the hours going past 24."""
    return '%d:%02d:%02d' % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def show_status(line=''):
    """Rewrite the status line at a terminal's foot ('' erases it); never in a log or a pipe."""
    if sys.stderr.isatty():
        sys.stderr.write('\r\x1b[K' + line[:os.get_terminal_size(sys.stderr.fileno()).columns - 1])
        sys.stderr.flush()


def train_and_predict_rnn(rnn, get_params, init_rnn_state, num_hiddens, vocab_size, ctx,
                          corpus_indices, idx_to_char, char_to_idx, is_random_iter, num_epochs,
                          num_steps, lr, clipping_theta, batch_size, pred_period, pred_len,
                          prefixes, temperature=0, val_indices=None, history=None, on_report=None):
    """SGD on clipped gradients; a status line each epoch on a terminal; every pred_period epochs
    and at the end, a report: perplexity (exp of the mean cross-entropy), held-out perplexity given
    val_indices, speed, continuations, then on_report(epoch, params, history). history (a dict) gets
    'train', a perplexity per epoch, and 'val', (epoch, perplexity) per report. Returns params."""
    sampler = 'random' if is_random_iter else 'consecutive'
    data_iter_fn = data_iter_random if is_random_iter else data_iter_consecutive
    try:  # the book's get_params() takes no arguments: it reads the sizes from globals
        inspect.signature(get_params).bind()
    except TypeError:  # charrnn's take them
        params = get_params(vocab_size, num_hiddens, ctx)
    else:
        params = get_params()
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
            sgd(params, lr, 1)  # the loss is a mean already
            loss_sum += loss
            n += 1
        if n == 0:
            raise ValueError('no minibatch: %d characters cannot fill batch_size %d x num_steps '
                             '%d' % (len(corpus_indices), batch_size, num_steps))
        mean_loss = loss_sum.asscalar() / n  # the epoch's one wait for the device
        if not mean_loss < 700:  # NaN, or a perplexity past float range: training diverged
            raise FloatingPointError('the loss became %g in epoch %d: lower the learning rate '
                                     '(%g) or θ (%g)' % (mean_loss, epoch + 1, lr, clipping_theta))
        history['train'].append(math.exp(mean_loss))
        seconds = time.time() - tic
        elapsed = time.time() - start
        speed = '%s chars/s' % format(n * batch_size * num_steps / seconds, ',.0f')
        eta = hms(elapsed / (epoch + 1) * (num_epochs - epoch - 1))
        show_status('%s: epoch %d/%d, perplexity %.2f, %s, ETA %s' % (
            sampler, epoch + 1, num_epochs, history['train'][-1], speed, eta))
        if (epoch + 1) % pred_period == 0 or epoch + 1 == num_epochs:
            line = 'epoch %d, perplexity %.2f' % (epoch + 1, history['train'][-1])
            if val_indices is not None:
                val = evaluate_perplexity(rnn, params, init_rnn_state, num_hiddens, vocab_size,
                                          ctx, val_indices, num_steps)
                history['val'].append((epoch + 1, val))
                line += ', val perplexity %.2f' % val
            show_status()  # erased: the report starts on a clean line
            print('%s, %.2f s/epoch, %s, elapsed %s, ETA %s'
                  % (line, seconds, speed, hms(elapsed), eta), flush=True)
            for prefix in prefixes:
                print(' -', predict_rnn(prefix, pred_len, rnn, params, init_rnn_state,
                                        num_hiddens, vocab_size, ctx, idx_to_char, char_to_idx,
                                        temperature), flush=True)
            if on_report:
                on_report(epoch + 1, params, history)
    return params


def save_checkpoint(path, params, idx_to_char, config):
    """Parameters, vocabulary and configuration in one .npz: a temporary file, renamed."""
    tmp = os.fspath(path) + '.tmp'
    try:
        with open(tmp, 'wb') as f:
            np.savez(f, *[p.asnumpy() for p in params], vocab=[ord(c) for c in idx_to_char],
                     config=json.dumps(dict(config, format='charrnn')))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path, ctx):
    """(params, idx_to_char, config) from a file written by save_checkpoint."""
    try:
        with np.load(path) as f:
            config = json.loads(str(f['config']))
            idx_to_char = [chr(i) for i in f['vocab']]
            params = [nd.array(f['arr_%d' % i], ctx=ctx) for i in range(len(f.files) - 2)]
        if config.pop('format', None) != 'charrnn':
            raise ValueError('no charrnn format mark')
    except Exception as e:  # a missing, truncated or foreign file fails in many ways: say so once
        raise ValueError('%s is not a charrnn checkpoint (%r)' % (path, e)) from None
    for p in params:
        p.attach_grad()
    return params, idx_to_char, config


def plot_perplexity(path, histories):
    """{sampler: history} drawn to a .png, .svg or .pdf on a log scale. Needs matplotlib."""
    try:
        from matplotlib.figure import Figure  # not pyplot: no window, no display needed
    except ImportError as e:
        raise ImportError('--plot needs matplotlib (%s): pip install matplotlib' % e) from None
    ax = Figure(figsize=(7, 4)).add_subplot(xlabel='epoch', ylabel='perplexity', yscale='log')
    for color, (sampler, history) in zip(['C0', 'C1'], histories.items()):
        ax.plot(range(1, len(history['train']) + 1), history['train'], color=color,
                label='%s sampling: training' % sampler)
        if history['val']:
            ax.plot([epoch for epoch, _ in history['val']], [p for _, p in history['val']],
                    'o--', color=color, label='%s sampling: held out' % sampler)
    if histories:
        ax.legend()
    ax.figure.savefig(path, dpi=100, bbox_inches='tight')

# -------------------------------------------------------------------------- command line 命令行


def parse_args(argv=None):
    """The flags, checked together; their defaults reproduce the notebook's run."""
    p = argparse.ArgumentParser(description=__doc__)
    a = p.add_argument
    a('--data', metavar='PATH', help='a UTF-8 .txt, or a .zip of one (default: the lyrics)')
    a('--corpus-chars', type=int, default=10000, help='characters used, 0: all (default: 10000)')
    a('--val-frac', type=float, default=0, help='share held out at the end (default: 0)')
    a('--cell', choices=CELLS, help="rnn, gru or lstm (default: rnn, or the checkpoint's)")
    a('--hiddens', type=int, help="hidden units (default: 256, or the checkpoint's)")
    a('--activation', choices=['relu', 'tanh'], help="rnn's φ (default: relu, or checkpoint's)")
    a('--sampler', choices=['random', 'consecutive', 'both'], default='both',
      help='both: a model for each, one after the other, as in the notebook (default: both)')
    a('--epochs', type=int, default=1000, help='epochs for each sampler (default: 1000)')
    a('--num-steps', type=int, default=35, help='time steps per window (default: 35)')
    a('--batch-size', type=int, default=32, help='windows per minibatch (default: 32)')
    a('--lr', type=float, default=100, help='learning rate of SGD (default: 100)')
    a('--clip', type=float, default=0.01, help='gradient clipping threshold θ (default: 0.01)')
    a('--pred-period', type=int, default=100, help='report every N epochs (default: 100)')
    a('--pred-len', type=int, default=50, help='characters to write per prefix (default: 50)')
    a('--prefixes', nargs='+', default=['分开', '不分开'], help='text to continue (default: 分开 不分开)')
    a('--temperature', type=float, default=0, help='0: the likeliest; T > 0: drawn from '
      'softmax(O / T) (default: 0)')
    a('--seed', type=int, help='the same seed, the same run on one machine (default: none)')
    a('--ctx', choices=['auto', 'cpu', 'gpu'], default='auto', help='auto: a working GPU, else '
      'the CPU (default: auto)')
    a('--save', metavar='PATH', help='keep the model: with --val-frac the best, else the last')
    a('--load', metavar='PATH', help='start from this checkpoint (cell, size, vocabulary)')
    a('--generate', action='store_true', help='with --load: only write continuations')
    a('--plot', metavar='PATH', help='draw the perplexities to a .png, .svg or .pdf')
    args = p.parse_args(argv)
    unused = ['--' + name.replace('_', '-') for name in [
        'data', 'corpus_chars', 'val_frac', 'sampler', 'epochs', 'num_steps', 'batch_size', 'lr',
        'clip', 'pred_period', 'save', 'plot'] if getattr(args, name) != p.get_default(name)]
    for name in ['epochs', 'num_steps', 'batch_size', 'lr', 'clip', 'pred_period', 'hiddens']:
        if getattr(args, name) is not None and not getattr(args, name) > 0:  # NaN too
            p.error('--%s must be greater than 0' % name.replace('_', '-'))
    for bad, why in [
            (min(args.corpus_chars, args.pred_len) < 0, '--corpus-chars, --pred-len: 0 or more'),
            (not 0 <= args.temperature < math.inf, '--temperature must be finite, 0 or more'),
            (not 0 <= args.val_frac < 1, '--val-frac must be at least 0 and below 1'),
            (args.generate and not args.load, '--generate needs --load'),
            (args.generate and unused, '--generate trains nothing: no ' + ', '.join(unused)),
            ((args.save or args.load) and not args.generate and args.sampler == 'both',
             '--save and --load take one model: --sampler random or consecutive')]:
        if bad:
            p.error(why)
    return args


def set_up(args):
    """--seed (random: the shuffle; MXNet: weights, draws) and --ctx; returns the device."""
    if args.seed is not None:
        random.seed(args.seed)
        mx.random.seed(args.seed)
    if args.ctx == 'gpu' and gpu_problem():
        raise ValueError('--ctx gpu: %s' % gpu_problem())
    return {'auto': ctx, 'cpu': mx.cpu(), 'gpu': mx.gpu()}[args.ctx]


def model_config(args, saved=None):
    """cell, hiddens, (an rnn's) activation: --load's (flags may repeat them), else the flags'."""
    config = dict(saved or {'cell': 'rnn', 'hiddens': 256, 'activation': 'relu'})
    cell = args.cell or config['cell']
    if args.activation and cell != 'rnn':
        raise ValueError('--activation is for --cell rnn only: a %s has no φ to choose' % cell)
    for key in ['cell', 'hiddens', 'activation']:
        given = getattr(args, key)
        if saved and given not in (None, saved.get(key)):
            raise ValueError('--%s %s contradicts the checkpoint (%s)' % (key, given, saved[key]))
        if given is not None:
            config[key] = given
    return config


def cell_functions(config):
    """(get_params, init_state, cell) of config's cell; an rnn's with its activation."""
    get, init_state, cell = CELLS[config['cell']]
    if config['cell'] == 'rnn':
        cell = functools.partial(rnn, activation=config['activation'])
    return get, init_state, cell


def split_corpus(corpus, val_frac, num_steps):
    """(train, val): the last val_frac of the corpus held out, enough for a window, or none."""
    n_val = int(len(corpus) * val_frac)
    if val_frac > 0 and n_val <= num_steps:
        raise ValueError('--val-frac %g holds out %d characters: it must hold out more than '
                         '--num-steps (%d)' % (val_frac, n_val, num_steps))
    return corpus[:len(corpus) - n_val], corpus[len(corpus) - n_val:]


def write_continuations(args, config, params, idx_to_char, device):
    """A line ' - ...' for each of --prefixes, continued by --pred-len characters."""
    _, init_state, cell = cell_functions(config)
    for prefix in args.prefixes:
        print(' -', predict_rnn(prefix, args.pred_len, cell, params, init_state,
                                config['hiddens'], len(idx_to_char), device, idx_to_char,
                                {c: i for i, c in enumerate(idx_to_char)}, args.temperature))


def train_models(args, config, params, idx_to_char, train, val, device):
    """A model for each sampler of --sampler; --save and --plot at each report; Ctrl-C: 130."""
    get, init_state, cell = cell_functions(config)
    histories = {}
    best = {}  # with held-out text, the val perplexity and epoch of the model --save wrote

    def on_report(epoch, params, history):
        if args.save and not val:
            save_checkpoint(args.save, params, idx_to_char, config)
            print('saved to', args.save, flush=True)
        elif args.save and history['val'][-1][1] < best.get('val', math.inf):
            save_checkpoint(args.save, params, idx_to_char, config)
            best.update(val=history['val'][-1][1], epoch=epoch)
            print('saved: best val perplexity %(val).2f at epoch %(epoch)d' % best, flush=True)
        if args.plot:
            plot_perplexity(args.plot, histories)
    samplers = ['random', 'consecutive'] if args.sampler == 'both' else [args.sampler]
    try:
        for i, sampler in enumerate(samplers):
            if params is None or i > 0:  # a new model (for each sampler, as in the notebook)
                params = get(len(idx_to_char), config['hiddens'], device)
            print('== %s sampling, %d epochs' % (sampler, args.epochs), flush=True)
            train_and_predict_rnn(
                cell, lambda: params, init_state, config['hiddens'], len(idx_to_char), device,
                train, idx_to_char, {c: i for i, c in enumerate(idx_to_char)}, sampler == 'random',
                args.epochs, args.num_steps, args.lr, args.clip, args.batch_size, args.pred_period,
                args.pred_len, args.prefixes, temperature=args.temperature, val_indices=val or None,
                history=histories.setdefault(sampler, {}), on_report=on_report)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the save
        print('\ninterrupted: the model as it stands', flush=True)
        if args.save and not best:  # held-out text chose no model: keep this one
            save_checkpoint(args.save, params, idx_to_char, config)
            print('saved to', args.save, flush=True)
        write_continuations(args, config, params, idx_to_char, device)
        sys.exit(130)


def run(args):
    """The command line's work, a job a line; bad input raises ValueError, OSError, ImportError."""
    device = set_up(args)
    if args.load:
        params, idx_to_char, saved = load_checkpoint(args.load, device)
        config = model_config(args, saved)
    if args.generate:
        write_continuations(args, config, params, idx_to_char, device)
        return
    if args.save and os.path.isdir(args.save):  # checked now, not after hours of training
        raise IsADirectoryError('--save %s is a folder: give a file name' % args.save)
    if args.save:  # a file can be made there: the folder exists and may be written
        open(args.save + '.tmp', 'wb').close()
        os.remove(args.save + '.tmp')
    text = read_text(args.data, args.corpus_chars or None)
    if not args.load:
        params = None
        idx_to_char = build_vocab(text)
        config = model_config(args)
    char_to_idx = {c: i for i, c in enumerate(idx_to_char)}
    for prefix in args.prefixes:  # a bad prefix stops the run now, not at the first report
        encode(prefix, char_to_idx)
    train, val = split_corpus(encode(text, char_to_idx), args.val_frac, args.num_steps)
    if args.plot:  # an empty plot, last: matplotlib is there and the file can be written
        plot_perplexity(args.plot, {})
    seen = set(train)
    print('%d characters (%d held out, %d unseen in training), vocabulary %d, %s of %d hidden '
          'units, on %s' % (len(text), len(val), sum(i not in seen for i in val),
                            len(idx_to_char), config['cell'], config['hiddens'], device))
    train_models(args, config, params, idx_to_char, train, val, device)


def main(argv=None):
    """Run the command line; bad input ends it with one line and exit status 1."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        run(parse_args(argv))
    except (ValueError, OSError, ImportError, ArithmeticError) as e:
        show_status()  # a status line on the terminal is erased first
        sys.exit('charrnn: error: %s' % e)
    finally:  # Ctrl-C works again in the notebook or program that called main()
        if signal.getsignal(signal.SIGINT) is not handler:  # (only the main thread may set it)
            signal.signal(signal.SIGINT, handler)


if __name__ == '__main__':
    main()
