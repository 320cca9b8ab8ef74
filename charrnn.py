"""charrnn: the char-RNN of Dive into Deep Learning (动手学深度学习), from scratch on MXNet, in
one file. It learns Jay Chou's lyrics and writes new ones; every piece keeps the book's name and
positional signature, so `import charrnn as d2l` runs the chapter as is."""
import argparse
import ctypes
import functools
import glob
import hashlib
import importlib.metadata
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
# MXNet uses half the CPUs, assuming 2 hyper-threads per core: use all where there are none.
SMT = pathlib.Path('/sys/devices/system/cpu/smt/active')
if SMT.exists() and SMT.read_text().strip() == '0':
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count()))

CUDA_LIBS = ('libcudart.so.11.0', 'libcublasLt.so.11', 'libcublas.so.11', 'libcufft.so.10',
             'libcurand.so.10', 'libcusolver.so.11', 'libnvrtc.so.11.2', 'libnvToolsExt.so.1',
             'libnccl.so.2', 'libcudnn.so.8')


def find_cuda_libs(site_packages):
    """Paths of the CUDA 11 libraries of pip's nvidia-*-cu11 wheels, in load order."""
    pattern = os.path.join(site_packages, 'nvidia', '*', 'lib', '*.so*')
    found = {os.path.basename(p): p for p in glob.glob(pattern)}
    return [found[name] for name in CUDA_LIBS if name in found]


try:  # mxnet-cu112 looks for CUDA only in its own folder: preload the wheels' libraries
    site = str(importlib.metadata.distribution('mxnet-cu112').locate_file(''))
    os.environ.setdefault('MXNET_CUDNN_LIB_CHECKING', '0')  # cuDNN 8.9 from PyPI, built for 8.1
    for lib in find_cuda_libs(site):
        ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
except importlib.metadata.PackageNotFoundError:  # the CPU wheel
    pass

import mxnet as mx  # noqa: E402  (after the set-up above)
from mxnet import autograd, nd  # noqa: E402

DATA_URL = 'https://github.com/d2l-ai/d2l-zh/raw/v1/data/jaychou_lyrics.txt.zip'
DATA_SHA1 = '9529987e701a4f37048ab778270a5dde9a762a0b'
DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jaychou_lyrics.txt.zip')


# ------------------------------------------------------------------------------ data 数据
def download(url=DATA_URL, path=DATA_PATH, sha1=DATA_SHA1):
    """Fetch url to path, keeping it only if its SHA-1 matches."""
    try:
        urllib.request.urlretrieve(url, path + '.part')
    except OSError as e:
        raise FileNotFoundError('%s is missing and could not be downloaded from %s (%s): copy '
                                'it there, or pass --data PATH' % (path, url, e)) from None
    digest = hashlib.sha1(pathlib.Path(path + '.part').read_bytes()).hexdigest()
    if digest != sha1:
        os.remove(path + '.part')
        raise ValueError('%s has SHA-1 %s, not %s: not kept' % (url, digest, sha1))
    os.replace(path + '.part', path)
    return path


def read_text(path=None, num_chars=10000):
    """The first num_chars characters (None: all) of a UTF-8 .txt, or of the one .txt in a
    .zip, newlines as spaces. path None: the book's corpus beside this file (downloaded)."""
    if path is None:
        path = DATA_PATH if os.path.exists(DATA_PATH) else download()
    try:
        if path.lower().endswith('.zip'):
            with zipfile.ZipFile(path) as z:
                raw = z.read(next(n for n in z.namelist() if n.endswith('.txt')))
        else:
            raw = pathlib.Path(path).read_bytes()
        return raw.decode('utf-8').replace('\n', ' ').replace('\r', ' ')[:num_chars]
    except (zipfile.BadZipFile, StopIteration, UnicodeDecodeError) as e:
        raise ValueError('%s is not a UTF-8 .txt, or a .zip holding one (%s: %s)'
                         % (path, type(e).__name__, e)) from None


def encode(text, char_to_idx):
    """The indices of text's characters; ValueError names those outside the vocabulary."""
    unknown = sorted(set(text) - set(char_to_idx))
    if unknown:
        raise ValueError('not in the vocabulary: %s' % ' '.join(repr(c) for c in unknown))
    return [char_to_idx[c] for c in text]


def load_data_jay_lyrics(path=None, num_chars=10000):
    """(corpus_indices, char_to_idx, idx_to_char, vocab_size). The vocabulary is sorted, so
    indices are the same in every process (the book's list(set(text)) is not)."""
    text = read_text(path, num_chars)
    idx_to_char = sorted(set(text))
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
    """相邻采样: the corpus cut into batch_size rows; batch k+1 continues batch k in each row."""
    batch_len = len(corpus_indices) // batch_size
    rows = nd.array(corpus_indices[:batch_size * batch_len], ctx=ctx).reshape((batch_size, -1))
    for i in range(0, (batch_len - 1) // num_steps * num_steps, num_steps):
        yield rows[:, i:i + num_steps], rows[:, i + 1:i + 1 + num_steps]


# ------------------------------------------------------------------------------ device 设备
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


# ------------------------------------------------------------------------------ model 模型
def to_onehot(X, size):
    """(batch, num_steps) indices -> a list of num_steps one-hot (batch, size) matrices."""
    return list(nd.one_hot(X.T, size))  # one operator; the items are views of its result


def affine_steps(X, W, b, num_steps):
    """X W + b split into num_steps matrices, X stacking all steps: one large product, not many
    small ones. FullyConnected (X Wᵀ + b on oneDNN) is twice as fast here as nd.dot(X, W) + b."""
    Z = nd.FullyConnected(X, W.T, b, num_hidden=W.shape[1])
    return list(nd.split(Z, num_outputs=num_steps, axis=0)) if num_steps > 1 else [Z]


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


def rnn(inputs, state, params, activation='relu'):
    """循环神经网络: H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q.
    φ is ReLU, the seed's choice (it converged faster there); the book's is tanh."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    phi = nd.relu if activation == 'relu' else nd.tanh
    (H,), Hs = state, []
    for XW_t in affine_steps(nd.concat(*inputs, dim=0), W_xh, b_h, len(inputs)):
        H = phi(XW_t + nd.dot(H, W_hh))
        Hs.append(H)
    return affine_steps(nd.concat(*Hs, dim=0), W_hq, b_q, len(Hs)), (H,)


def get_gru_params(vocab_size, num_hiddens, ctx):
    """W_x*, W_h*, b_* of the update gate z, reset gate r and candidate h; then W_hq, b_q."""
    V, H = vocab_size, num_hiddens
    return init_params(ctx, *[(V, H), (H, H), (H,)] * 3, (H, V), (V,))


init_gru_state = init_rnn_state


def gru(inputs, state, params):
    """门控循环单元: Z = σ(X W_xz + H W_hz + b_z), R = σ(X W_xr + H W_hr + b_r),
    H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h), H = Z ⊙ H + (1 - Z) ⊙ H̃."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    (H,), X, T, Hs = state, nd.concat(*inputs, dim=0), len(inputs), []
    terms = [affine_steps(X, W, b, T) for W, b in [(W_xz, b_z), (W_xr, b_r), (W_xh, b_h)]]
    for xz, xr, xh in zip(*terms):
        Z = nd.sigmoid(xz + nd.dot(H, W_hz))
        R = nd.sigmoid(xr + nd.dot(H, W_hr))
        H_tilda = nd.tanh(xh + nd.dot(R * H, W_hh))
        H = Z * H + (1 - Z) * H_tilda
        Hs.append(H)
    return affine_steps(nd.concat(*Hs, dim=0), W_hq, b_q, T), (H,)


def get_lstm_params(vocab_size, num_hiddens, ctx):
    """W_x*, W_h*, b_* of the gates i, f, o and the candidate memory c, then W_hq, b_q."""
    V, H = vocab_size, num_hiddens
    return init_params(ctx, *[(V, H), (H, H), (H,)] * 4, (H, V), (V,))


def init_lstm_state(batch_size, num_hiddens, ctx):
    """(H, C): the hidden state and the memory cell."""
    return init_rnn_state(batch_size, num_hiddens, ctx) * 2


def lstm(inputs, state, params):
    """长短期记忆: I, F, O = σ(X W_x* + H W_h* + b_*), C̃ = tanh(X W_xc + H W_hc + b_c),
    C = F ⊙ C + I ⊙ C̃, H = O ⊙ tanh(C)."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    (H, C), X, T, Hs = state, nd.concat(*inputs, dim=0), len(inputs), []
    terms = [affine_steps(X, W, b, T)
             for W, b in [(W_xi, b_i), (W_xf, b_f), (W_xo, b_o), (W_xc, b_c)]]
    for xi, xf, xo, xc in zip(*terms):
        I = nd.sigmoid(xi + nd.dot(H, W_hi))  # noqa: E741 (the book's names)
        F = nd.sigmoid(xf + nd.dot(H, W_hf))
        O = nd.sigmoid(xo + nd.dot(H, W_ho))  # noqa: E741
        C_tilda = nd.tanh(xc + nd.dot(H, W_hc))
        C = F * C + I * C_tilda
        H = O * nd.tanh(C)
        Hs.append(H)
    return affine_steps(nd.concat(*Hs, dim=0), W_hq, b_q, T), (H, C)


CELLS = {'rnn': (get_params, init_rnn_state, rnn), 'gru': (get_gru_params, init_gru_state, gru),
         'lstm': (get_lstm_params, init_lstm_state, lstm)}


# ------------------------------------------------------------------------------ prediction 预测
def predict_rnn(prefix, num_chars, rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx,
                idx_to_char, char_to_idx, temperature=0):
    """prefix, then num_chars characters: the likeliest, or drawn from softmax(O / temperature)."""
    if not prefix:
        raise ValueError('the prefix is empty: give at least one character')
    output = encode(prefix, char_to_idx)
    state = init_rnn_state(1, num_hiddens, ctx)
    X = nd.array([output], ctx=ctx)  # the whole prefix in one call sets the state up
    for _ in range(num_chars):
        Y, state = rnn(to_onehot(X, vocab_size), state, params)
        if temperature > 0:
            next_idx = nd.sample_multinomial(nd.softmax(Y[-1] / temperature))
        else:
            next_idx = Y[-1].argmax(axis=1)
        output.append(int(next_idx.asscalar()))
        X = nd.array([output[-1:]], ctx=ctx)
    return ''.join(idx_to_char[i] for i in output)


# ------------------------------------------------------------------------------ training 训练
def sequence_loss(outputs, Y):
    """Mean cross-entropy -log p(y) per character: SoftmaxCrossEntropyLoss's value, twice as fast
    (oneDNN softmax). p is floored at 1e-30: an underflow cannot make NaN gradients."""
    p = nd.pick(nd.softmax(nd.concat(*outputs, dim=0)), Y.T.reshape((-1,)))
    return -nd.log(nd.maximum(p, 1e-30)).mean()


def grad_clipping(params, theta, ctx):
    """裁剪梯度: g <- min(θ / ||g||, 1) g, g being all the gradients as one vector.
    Computed on the device (one fused sum of squares), so there is no wait for it."""
    grads = [p.grad for p in params]
    norm = nd.multi_sum_sq(*grads, num_arrays=len(grads)).sum().sqrt()
    scale = nd.minimum(theta / norm, 1)
    for g in grads:
        g[:] *= scale


def sgd(params, lr, batch_size):
    """param <- param - lr * grad / batch_size, all parameters in one fused operator
    (fast, and a Ctrl-C cannot leave half of them updated)."""
    n = len(params)
    nd.multi_sgd_update(*[a for p in params for a in (p, p.grad)], lrs=[lr] * n, wds=[0] * n,
                        rescale_grad=1 / batch_size, num_weights=n, out=params)


def evaluate_perplexity(rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx,
                        corpus_indices, num_steps):
    """困惑度 of held-out text read in order, the state carried from window to window."""
    state, loss_sum, n = init_rnn_state(1, num_hiddens, ctx), nd.zeros(1, ctx=ctx), 0
    for X, Y in data_iter_consecutive(corpus_indices, 1, num_steps, ctx):
        outputs, state = rnn(to_onehot(X, vocab_size), state, params)
        loss_sum += sequence_loss(outputs, Y)
        n += 1
    return math.exp(loss_sum.asscalar() / n)


def train_and_predict_rnn(rnn, get_params, init_rnn_state, num_hiddens, vocab_size, ctx,
                          corpus_indices, idx_to_char, char_to_idx, is_random_iter, num_epochs,
                          num_steps, lr, clipping_theta, batch_size, pred_period, pred_len,
                          prefixes, temperature=0, val_indices=None):
    """SGD on clipped gradients. Every pred_period epochs (and at the end) print perplexity
    (exp of the mean cross-entropy), speed and samples. Returns the trained parameters."""
    data_iter_fn = data_iter_random if is_random_iter else data_iter_consecutive
    params, start = get_params(), time.time()
    for epoch in range(num_epochs):
        if not is_random_iter:  # 相邻采样: one state runs through the epoch
            state = init_rnn_state(batch_size, num_hiddens, ctx)
        loss_sum, n, tic = nd.zeros(1, ctx=ctx), 0, time.time()
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
        perplexity = math.exp(loss_sum.asscalar() / n)  # the epoch's one wait for the device
        if math.isnan(perplexity):
            raise FloatingPointError('the loss became NaN in epoch %d: lower the learning rate'
                                     ' (%g) or θ (%g)' % (epoch + 1, lr, clipping_theta))
        if (epoch + 1) % pred_period == 0 or epoch + 1 == num_epochs:
            seconds, elapsed = time.time() - tic, time.time() - start
            times = [time.strftime('%H:%M:%S', time.gmtime(t)) for t in
                     (elapsed, elapsed / (epoch + 1) * (num_epochs - epoch - 1))]
            val = ', val perplexity %.2f' % evaluate_perplexity(
                rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx, val_indices,
                num_steps) if val_indices else ''
            print('epoch %d, perplexity %.2f%s, %.2f s/epoch, elapsed %s, ETA %s'
                  % (epoch + 1, perplexity, val, seconds, *times), flush=True)
            for prefix in prefixes:
                print(' -', predict_rnn(prefix, pred_len, rnn, params, init_rnn_state,
                                        num_hiddens, vocab_size, ctx, idx_to_char, char_to_idx,
                                        temperature), flush=True)
    return params


# ------------------------------------------------------------------ checkpoints, command line 命令行
def save_checkpoint(path, params, idx_to_char, config):
    """Parameters, vocabulary and configuration in one .npz; atomic: a temporary file, renamed."""
    with open(path + '.tmp', 'wb') as f:
        np.savez(f, *[p.asnumpy() for p in params], vocab=[ord(c) for c in idx_to_char],
                 config=json.dumps(dict(config, format='charrnn')))
    os.replace(path + '.tmp', path)


def load_checkpoint(path, ctx):
    """(params, idx_to_char, config) from a file written by save_checkpoint."""
    if not os.path.isfile(path):
        raise FileNotFoundError('no checkpoint at %s' % path)
    try:
        with np.load(path) as f:
            config = json.loads(str(f['config']))
            idx_to_char = [chr(i) for i in f['vocab']]
            params = [nd.array(f['arr_%d' % i], ctx=ctx) for i in range(len(f.files) - 2)]
        if config.pop('format', None) != 'charrnn':
            raise ValueError('no charrnn format mark')
    except Exception as e:  # a truncated or foreign file can fail in many ways: say so once
        raise ValueError('%s is not a charrnn checkpoint (%s: %s)'
                         % (path, type(e).__name__, e)) from None
    for p in params:
        p.attach_grad()
    return params, idx_to_char, config


def parse_args(argv=None):
    """The flags; their defaults reproduce the seed notebook's run."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a('--data', help='a UTF-8 .txt, or a .zip of one (default: the lyrics, downloaded if absent)')
    a('--corpus-chars', type=int, default=10000, help='characters of the text to use; 0: all')
    a('--val-frac', type=float, default=0, help='share held out at the end of the text')
    a('--cell', choices=CELLS, help="rnn, gru or lstm (default: rnn, or the checkpoint's)")
    a('--hiddens', type=int, help="hidden units (default: 256, or the checkpoint's)")
    a('--activation', choices=['relu', 'tanh'], help="rnn's φ (default: relu, or checkpoint's)")
    a('--sampler', choices=['random', 'consecutive', 'both'], default='both',
      help='minibatch sampling; both: two models, one after the other, as in the seed')
    a('--epochs', type=int, default=1000, help='epochs, for each sampler')
    a('--num-steps', type=int, default=35, help='time steps per window')
    a('--batch-size', type=int, default=32, help='windows per minibatch')
    a('--lr', type=float, default=100, help='learning rate of SGD')
    a('--clip', type=float, default=0.01, help='gradient clipping threshold θ')
    a('--pred-period', type=int, default=100, help='report every this many epochs')
    a('--pred-len', type=int, default=50, help='characters to write after each prefix')
    a('--prefixes', nargs='+', default=['分开', '不分开'], help='beginnings to continue')
    a('--temperature', type=float, default=0, help='0: the likeliest; T > 0: from softmax(O/T)')
    a('--seed', type=int, help='random seed: the same seed, the same run on one machine')
    a('--ctx', choices=['auto', 'cpu', 'gpu'], default='auto', help='auto: a working GPU, or CPU')
    a('--save', metavar='PATH', help='write the model there after training, and on Ctrl-C')
    a('--load', metavar='PATH', help='start from this checkpoint (cell, size, vocabulary)')
    a('--generate', action='store_true', help='with --load: only write continuations')
    args = p.parse_args(argv)
    for flag in ['epochs', 'num_steps', 'batch_size', 'lr', 'clip', 'pred_period', 'hiddens']:
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            p.error('--%s must be greater than 0' % flag.replace('_', '-'))
    for bad, why in [(min(args.corpus_chars, args.pred_len, args.temperature) < 0,
                      '--corpus-chars, --pred-len and --temperature must be 0 or more'),
                     (not 0 <= args.val_frac < 1, '--val-frac must be at least 0 and below 1'),
                     (args.generate and not args.load, '--generate needs --load'),
                     ((args.save or args.load) and not args.generate and args.sampler == 'both',
                      '--save and --load take one model: --sampler random or consecutive')]:
        if bad:
            p.error(why)
    return args


def run(args):
    """The command line's work, raising ValueError, OSError or FloatingPointError on bad input."""
    if args.seed is not None:
        random.seed(args.seed)  # the random sampler's shuffle
        mx.random.seed(args.seed)  # initial weights, sampling with a temperature
    if args.ctx == 'gpu' and gpu_problem():
        raise ValueError('--ctx gpu: %s' % gpu_problem())
    device = {'auto': ctx, 'cpu': mx.cpu(), 'gpu': mx.gpu()}[args.ctx]
    params, idx_to_char, saved = load_checkpoint(args.load, device) if args.load else [None] * 3
    config = saved or {'cell': 'rnn', 'hiddens': 256, 'activation': 'relu'}
    for key in ['cell', 'hiddens', 'activation']:  # the checkpoint's, else the flags'
        given = getattr(args, key)
        if saved and given not in (None, saved[key]):
            raise ValueError('--%s %s contradicts the checkpoint (%s)' % (key, given, saved[key]))
        config[key] = config[key] if given is None else given
    get, init_state, cell = CELLS[config['cell']]
    if config['cell'] == 'rnn':
        cell = functools.partial(rnn, activation=config['activation'])
    text = None if args.generate else read_text(args.data, args.corpus_chars or None)
    idx_to_char = idx_to_char or sorted(set(text))
    char_to_idx = {c: i for i, c in enumerate(idx_to_char)}
    V, H = len(idx_to_char), config['hiddens']
    params = params or get(V, H, device)

    def samples(num_chars):  # 0 checks the prefixes: before training, not after 100 epochs
        return '\n'.join(' - ' + predict_rnn(p, num_chars, cell, params, init_state, H, V,
                                             device, idx_to_char, char_to_idx, args.temperature)
                         for p in args.prefixes)
    if args.generate:
        return print(samples(args.pred_len))
    samples(0)
    corpus = encode(text, char_to_idx)
    n_val = int(len(corpus) * args.val_frac)
    if 0 < n_val <= args.num_steps:
        raise ValueError('--val-frac %g holds out %d characters: give it more than --num-steps'
                         % (args.val_frac, n_val))
    train, val = corpus[:len(corpus) - n_val], corpus[len(corpus) - n_val:]
    print('%d characters (%d held out), vocabulary %d, %s of %d hidden units, on %s'
          % (len(corpus), n_val, V, config['cell'], H, device), flush=True)
    samplers = ['random', 'consecutive'] if args.sampler == 'both' else [args.sampler]
    interrupted = False
    try:
        for i, sampler in enumerate(samplers):
            if i:  # the seed trains a new model for each sampler
                params = get(V, H, device)
            print('== %s sampling, %d epochs' % (sampler, args.epochs), flush=True)
            train_and_predict_rnn(cell, lambda: params, init_state, H, V, device, train,
                                  idx_to_char, char_to_idx, sampler == 'random', args.epochs,
                                  args.num_steps, args.lr, args.clip, args.batch_size,
                                  args.pred_period, args.pred_len, args.prefixes,
                                  temperature=args.temperature, val_indices=val)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the save
        print('\ninterrupted: the model as it stands', flush=True)
        interrupted = True
    if args.save:
        save_checkpoint(args.save, params, idx_to_char, config)
        print('saved to', args.save, flush=True)
    if interrupted:
        print(samples(args.pred_len), flush=True)
        sys.exit(130)


def main(argv=None):
    """Run the command line; bad input ends it with one line and exit status 1."""
    try:
        run(parse_args(argv))
    except (ValueError, OSError, FloatingPointError) as e:
        sys.exit('charrnn: error: %s' % e)


if __name__ == '__main__':
    main()
