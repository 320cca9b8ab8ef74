"""charrnn: a character-level RNN language model, from scratch on MXNet.

The chapter 循环神经网络的从零开始实现 of Dive into Deep Learning (动手学深度学习,
MXNet edition) in one file: it trains on Jay Chou's lyrics and writes new ones.
Every piece keeps the book's name and positional signature, so
`import charrnn as d2l` runs the chapter's code unchanged.

    python charrnn.py            # the seed notebook's run: 1000 epochs random, then consecutive
    python charrnn.py --help     # every flag
"""
import argparse
import ctypes
import glob
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import random
import signal
import sys
import time
import urllib.request
import zipfile

import numpy as np

# MXNet 1.9.1 still says np.bool, which numpy 1.24 removed (newer numpy is needed on Python 3.12).
if np.lib.NumpyVersion(np.__version__) >= '1.24.0':
    np.bool = bool
# MXNet assumes two hyper-threads per core and uses half the CPUs; use them all, unless the user chose.
os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count()))

CUDA_LIBS = ('libcudart.so.11.0', 'libcublasLt.so.11', 'libcublas.so.11', 'libcufft.so.10', 'libcurand.so.10',
             'libcusolver.so.11', 'libnvrtc.so.11.2', 'libnvToolsExt.so.1', 'libnccl.so.2', 'libcudnn.so.8')


def find_cuda_libs(site_packages):
    """Paths of the CUDA 11 libraries that pip's nvidia-*-cu11 wheels put under site_packages, in load order."""
    found = {os.path.basename(p): p for p in glob.glob(os.path.join(site_packages, 'nvidia', '*', 'lib', '*.so*'))}
    return [found[name] for name in CUDA_LIBS if name in found]


# mxnet-cu112's libmxnet.so looks for CUDA only in its own folder: preload the wheels' copies globally.
try:
    importlib.metadata.version('mxnet-cu112')
except importlib.metadata.PackageNotFoundError:
    pass
else:
    os.environ.setdefault('MXNET_CUDNN_LIB_CHECKING', '0')  # cuDNN 8.9 from PyPI, MXNet built for 8.1
    for path in find_cuda_libs(os.path.dirname(os.path.dirname(importlib.util.find_spec('mxnet').origin))):
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)

import mxnet as mx  # noqa: E402  (after the set-up above)
from mxnet import autograd, nd  # noqa: E402

DATA_URL = 'https://github.com/d2l-ai/d2l-zh/raw/v1/data/jaychou_lyrics.txt.zip'
DATA_SHA1 = '9529987e701a4f37048ab778270a5dde9a762a0b'
DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jaychou_lyrics.txt.zip')


# ---------------------------------------------------------------- data 数据
def download(url=DATA_URL, path=DATA_PATH, sha1=DATA_SHA1):
    """Fetch url to path, keeping it only if its SHA-1 matches."""
    part = path + '.part'
    try:
        urllib.request.urlretrieve(url, part)
    except OSError as e:
        raise FileNotFoundError('%s is missing and could not be downloaded from %s (%s): copy '
                                'jaychou_lyrics.txt.zip there, or pass --data PATH' % (path, url, e)) from None
    with open(part, 'rb') as f:
        digest = hashlib.sha1(f.read()).hexdigest()
    if digest != sha1:
        os.remove(part)
        raise ValueError('download from %s has SHA-1 %s, expected %s: not kept' % (url, digest, sha1))
    os.replace(part, path)
    return path


def read_text(path=None, num_chars=10000):
    """The first num_chars characters (None: all) of a UTF-8 .txt file, or of the one .txt inside a .zip,
    newlines as spaces. path None means the book's corpus beside this file, downloaded if absent."""
    if path is None:
        path = DATA_PATH if os.path.exists(DATA_PATH) else download()
    if not os.path.isfile(path):
        raise FileNotFoundError('no corpus file at %s' % path)
    try:
        if path.lower().endswith('.zip'):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith('.txt')]
                if len(names) != 1:
                    raise ValueError('%s should hold one .txt file, not %s' % (path, names))
                raw = z.read(names[0])
        else:
            with open(path, 'rb') as f:
                raw = f.read()
        text = raw.decode('utf-8')
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as e:
        raise ValueError('%s is not a readable UTF-8 text or zip file (%s)' % (path, e)) from None
    text = text.replace('\n', ' ').replace('\r', ' ')[:num_chars]
    if not text:
        raise ValueError('%s holds no text' % path)
    return text


def encode(text, char_to_idx):
    """Indices of the characters of text; ValueError names any character outside the vocabulary."""
    unknown = sorted(set(text) - set(char_to_idx))
    if unknown:
        raise ValueError('character(s) not in the vocabulary: %s' % ' '.join(repr(c) for c in unknown))
    return [char_to_idx[c] for c in text]


def load_data_jay_lyrics(path=None, num_chars=10000):
    """(corpus_indices, char_to_idx, idx_to_char, vocab_size) of the lyrics (or of the text at path).
    The vocabulary is sorted, so indices are the same in every run (the book's list(set()) is not)."""
    text = read_text(path, num_chars)
    idx_to_char = sorted(set(text))
    char_to_idx = {c: i for i, c in enumerate(idx_to_char)}
    return encode(text, char_to_idx), char_to_idx, idx_to_char, len(idx_to_char)


def data_iter_random(corpus_indices, batch_size, num_steps, ctx=None):
    """随机采样: minibatches of non-overlapping windows taken in random order; Y is X shifted by one."""
    corpus = np.asarray(corpus_indices)
    num_examples = (len(corpus) - 1) // num_steps
    starts = np.arange(num_examples) * num_steps
    random.shuffle(starts)
    offsets = np.arange(num_steps)
    for i in range(num_examples // batch_size):
        batch = starts[i * batch_size:(i + 1) * batch_size, None] + offsets
        yield nd.array(corpus[batch], ctx=ctx), nd.array(corpus[batch + 1], ctx=ctx)


def data_iter_consecutive(corpus_indices, batch_size, num_steps, ctx=None):
    """相邻采样: the corpus cut into batch_size rows; batch k+1 continues batch k in every row."""
    batch_len = len(corpus_indices) // batch_size
    rows = nd.array(corpus_indices[:batch_size * batch_len], ctx=ctx).reshape((batch_size, batch_len))
    for i in range(0, (batch_len - 1) // num_steps * num_steps, num_steps):
        yield rows[:, i:i + num_steps], rows[:, i + 1:i + 1 + num_steps]


# ---------------------------------------------------------------- device 设备
def gpu_problem():
    """None if gpu(0) runs a kernel and reads it back, else why not (the book's check only allocates)."""
    if mx.context.num_gpus() == 0:  # asking a CPU-only MXNet for mx.gpu() logs an error
        return 'no GPU visible to MXNet'
    try:
        (nd.ones((2,), ctx=mx.gpu()) * 2).asnumpy()
    except mx.base.MXNetError as e:
        return str(e).strip().splitlines()[0]
    return None


def try_gpu():
    """gpu(0) if it works, else cpu() (with one line saying why, when a GPU is there but unusable)."""
    problem = gpu_problem()
    if problem is None:
        return mx.gpu()
    if mx.context.num_gpus():
        print('charrnn: GPU unusable, using the CPU: %s' % problem, file=sys.stderr)
    return mx.cpu()


ctx = try_gpu()


# ---------------------------------------------------------------- model 模型
def to_onehot(X, size):
    """(batch, num_steps) indices -> list of num_steps one-hot (batch, size) matrices."""
    return list(nd.one_hot(X.T, size))  # one operator; the list items are views of its output


def split_steps(Z, num_steps):
    """(num_steps * batch, d) -> list of num_steps (batch, d) matrices."""
    parts = nd.split(Z, num_outputs=num_steps, axis=0)
    return [parts] if num_steps == 1 else list(parts)


def affine(X, W, b):
    """X W + b. FullyConnected computes X Wᵀ + b on oneDNN with all cores and a fused bias
    gradient: here twice as fast as nd.dot(X, W) + b, whose bias gradient is a slow reduction."""
    return nd.FullyConnected(X, W.T, b, num_hidden=W.shape[1])


def input_terms(inputs, *weights):
    """X_t W + b for every time step, for each (W, b): they do not depend on H, so each is
    one large product over all steps instead of num_steps small ones."""
    X = nd.concat(*inputs, dim=0)
    return [split_steps(affine(X, W, b), len(inputs)) for W, b in weights]


def output_layer(Hs, W_hq, b_q):
    """O_t = H_t W_hq + b_q for every step, as one product."""
    return split_steps(affine(nd.concat(*Hs, dim=0), W_hq, b_q), len(Hs))


def layer(num_inputs, num_outputs, ctx):
    """A weight matrix drawn from N(0, 0.01²) and a zero bias, with gradients attached."""
    params = [nd.random.normal(scale=0.01, shape=(num_inputs, num_outputs), ctx=ctx), nd.zeros(num_outputs, ctx=ctx)]
    for p in params:
        p.attach_grad()
    return params


def gate(vocab_size, num_hiddens, ctx):
    """W_x*, W_h*, b_* of one gate (or of the RNN's hidden layer)."""
    W_x, b = layer(vocab_size, num_hiddens, ctx)
    W_h, _ = layer(num_hiddens, num_hiddens, ctx)
    return [W_x, W_h, b]


def get_params(vocab_size, num_hiddens, ctx):
    """[W_xh, W_hh, b_h, W_hq, b_q]."""
    return gate(vocab_size, num_hiddens, ctx) + layer(num_hiddens, vocab_size, ctx)


def init_rnn_state(batch_size, num_hiddens, ctx):
    """(H,): a tuple, so that cells whose state has several parts (LSTM) fit the same loop."""
    return (nd.zeros((batch_size, num_hiddens), ctx=ctx),)


def rnn(inputs, state, params, activation='relu'):
    """循环神经网络: H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h),  O_t = H_t W_hq + b_q.
    φ is ReLU, the seed's choice (it converged faster there); the book uses tanh."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    phi = nd.relu if activation == 'relu' else nd.tanh
    H, = state
    XW, = input_terms(inputs, (W_xh, b_h))
    Hs = []
    for XW_t in XW:
        H = phi(XW_t + nd.dot(H, W_hh))
        Hs.append(H)
    return output_layer(Hs, W_hq, b_q), (H,)


def get_gru_params(vocab_size, num_hiddens, ctx):
    """Update gate (z), reset gate (r), candidate (h), then the output layer."""
    return sum((gate(vocab_size, num_hiddens, ctx) for _ in 'zrh'), []) + layer(num_hiddens, vocab_size, ctx)


init_gru_state = init_rnn_state


def gru(inputs, state, params):
    """门控循环单元: Z = σ(X W_xz + H W_hz + b_z), R = σ(X W_xr + H W_hr + b_r),
    H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h), H = Z ⊙ H + (1 - Z) ⊙ H̃."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    Hs = []
    for xz, xr, xh in zip(*input_terms(inputs, (W_xz, b_z), (W_xr, b_r), (W_xh, b_h))):
        Z = nd.sigmoid(xz + nd.dot(H, W_hz))
        R = nd.sigmoid(xr + nd.dot(H, W_hr))
        H_tilda = nd.tanh(xh + nd.dot(R * H, W_hh))
        H = Z * H + (1 - Z) * H_tilda
        Hs.append(H)
    return output_layer(Hs, W_hq, b_q), (H,)


def get_lstm_params(vocab_size, num_hiddens, ctx):
    """Input (i), forget (f), output (o) gates, candidate memory (c), then the output layer."""
    return sum((gate(vocab_size, num_hiddens, ctx) for _ in 'ifoc'), []) + layer(num_hiddens, vocab_size, ctx)


def init_lstm_state(batch_size, num_hiddens, ctx):
    """(H, C): hidden state and memory cell."""
    return init_rnn_state(batch_size, num_hiddens, ctx) * 2


def lstm(inputs, state, params):
    """长短期记忆: I, F, O = σ(X W_x* + H W_h* + b_*), C̃ = tanh(X W_xc + H W_hc + b_c),
    C = F ⊙ C + I ⊙ C̃, H = O ⊙ tanh(C)."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    H, C = state
    Hs = []
    terms = input_terms(inputs, (W_xi, b_i), (W_xf, b_f), (W_xo, b_o), (W_xc, b_c))
    for xi, xf, xo, xc in zip(*terms):
        I = nd.sigmoid(xi + nd.dot(H, W_hi))  # noqa: E741  (the book's name)
        F = nd.sigmoid(xf + nd.dot(H, W_hf))
        O = nd.sigmoid(xo + nd.dot(H, W_ho))
        C = F * C + I * nd.tanh(xc + nd.dot(H, W_hc))
        H = O * nd.tanh(C)
        Hs.append(H)
    return output_layer(Hs, W_hq, b_q), (H, C)


CELLS = {'rnn': (get_params, init_rnn_state, rnn), 'gru': (get_gru_params, init_gru_state, gru),
         'lstm': (get_lstm_params, init_lstm_state, lstm)}


# ---------------------------------------------------------------- prediction 预测
def predict_rnn(prefix, num_chars, rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx,
                idx_to_char, char_to_idx, temperature=0):
    """prefix followed by num_chars characters: greedy (argmax) when temperature is 0,
    else sampled from softmax(O / temperature)."""
    if not prefix:
        raise ValueError('the prefix is empty: give at least one character')
    output = encode(prefix, char_to_idx)
    state = init_rnn_state(1, num_hiddens, ctx)
    X = nd.array([output], ctx=ctx)  # the whole prefix in one call warms the state up
    for _ in range(num_chars):
        Y, state = rnn(to_onehot(X, vocab_size), state, params)
        if temperature > 0:
            next_idx = nd.sample_multinomial(nd.softmax(Y[-1] / temperature))
        else:
            next_idx = Y[-1].argmax(axis=1)
        output.append(int(next_idx.asscalar()))
        X = nd.array([output[-1:]], ctx=ctx)
    return ''.join(idx_to_char[i] for i in output)


# ---------------------------------------------------------------- training 训练
def sequence_loss(outputs, Y):
    """Mean cross-entropy -log p(y) per character, outputs against the (batch, num_steps) labels Y:
    SoftmaxCrossEntropyLoss's value, 2x faster (oneDNN softmax). p is floored at 1e-30 so that
    an underflow gives a large loss, never an infinite one or NaN gradients."""
    p = nd.pick(nd.softmax(nd.concat(*outputs, dim=0)), Y.T.reshape((-1,)))
    return -nd.log(nd.maximum(p, 1e-30)).mean()


def grad_clipping(params, theta, ctx):
    """裁剪梯度: g <- min(θ / ||g||, 1) g, with g all gradients as one vector.
    The norm stays on the device (one fused sum of squares): no wait for it each batch."""
    grads = [p.grad for p in params]
    norm = nd.multi_sum_sq(*grads, num_arrays=len(grads)).sum().sqrt()
    scale = nd.minimum(theta / norm, 1)
    for g in grads:
        g[:] *= scale


def sgd(params, lr, batch_size):
    """param <- param - lr * grad / batch_size, for all parameters in one fused operator
    (fast, and a Ctrl-C can never leave half of them updated)."""
    n = len(params)
    nd.multi_sgd_update(*[a for p in params for a in (p, p.grad)], lrs=[lr] * n, wds=[0] * n,
                        rescale_grad=1 / batch_size, num_weights=n, out=params)


def evaluate_perplexity(rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx, corpus_indices, num_steps):
    """困惑度 of held-out text, read in order with the state carried from window to window."""
    state = init_rnn_state(1, num_hiddens, ctx)
    loss_sum, n = nd.zeros(1, ctx=ctx), 0
    for X, Y in data_iter_consecutive(corpus_indices, 1, num_steps, ctx):
        outputs, state = rnn(to_onehot(X, vocab_size), state, params)
        loss_sum += sequence_loss(outputs, Y)
        n += 1
    return math.exp(loss_sum.asscalar() / n)


def train_and_predict_rnn(rnn, get_params, init_rnn_state, num_hiddens, vocab_size, ctx, corpus_indices,
                          idx_to_char, char_to_idx, is_random_iter, num_epochs, num_steps, lr,
                          clipping_theta, batch_size, pred_period, pred_len, prefixes,
                          temperature=0, val_indices=None):
    """Train with SGD on clipped gradients; every pred_period epochs print perplexity, speed and
    samples. Returns the parameters (from get_params(), updated in place)."""
    data_iter_fn = data_iter_random if is_random_iter else data_iter_consecutive
    params = get_params()
    start = time.time()
    for epoch in range(num_epochs):
        if not is_random_iter:  # 相邻采样: the state runs through the whole epoch
            state = init_rnn_state(batch_size, num_hiddens, ctx)
        loss_sum, n, tic = nd.zeros(1, ctx=ctx), 0, time.time()
        for X, Y in data_iter_fn(corpus_indices, batch_size, num_steps, ctx):
            if is_random_iter:  # 随机采样: windows are unrelated, start each from zero
                state = init_rnn_state(batch_size, num_hiddens, ctx)
            else:  # cut the graph at the batch boundary; the book calls s.detach() and drops its result
                state = tuple(s.detach() for s in state)
            with autograd.record():
                outputs, state = rnn(to_onehot(X, vocab_size), state, params)
                loss = sequence_loss(outputs, Y)
            loss.backward()
            grad_clipping(params, clipping_theta, ctx)
            sgd(params, lr, 1)  # the loss is already a mean
            loss_sum += loss
            n += 1
        if n == 0:
            raise ValueError('no minibatch: %d characters cannot fill batch_size %d x num_steps %d'
                             % (len(corpus_indices), batch_size, num_steps))
        perplexity = math.exp(loss_sum.asscalar() / n)  # the one wait for the device per epoch
        if math.isnan(perplexity):
            raise FloatingPointError('the loss became NaN at epoch %d: lower the learning rate (%g) or '
                                     'the clipping threshold (%g)' % (epoch + 1, lr, clipping_theta))
        if (epoch + 1) % pred_period == 0 or epoch + 1 == num_epochs:
            elapsed = time.time() - start
            val = '' if not val_indices else ', val perplexity %.2f' % evaluate_perplexity(
                rnn, params, init_rnn_state, num_hiddens, vocab_size, ctx, val_indices, num_steps)
            print('epoch %d, perplexity %.2f%s, %.2f s/epoch, elapsed %s, ETA %s'
                  % (epoch + 1, perplexity, val, time.time() - tic, clock(elapsed),
                     clock(elapsed / (epoch + 1) * (num_epochs - epoch - 1))), flush=True)
            for prefix in prefixes:
                print(' -', predict_rnn(prefix, pred_len, rnn, params, init_rnn_state, num_hiddens,
                                        vocab_size, ctx, idx_to_char, char_to_idx, temperature), flush=True)
    return params


def clock(seconds):
    """7:05 for 425 s, 1:02:03 for 3723 s."""
    m, s = divmod(int(seconds), 60)
    return '%d:%02d:%02d' % (m // 60, m % 60, s) if m >= 60 else '%d:%02d' % (m, s)


# ---------------------------------------------------------------- checkpoints 保存与加载
def save_checkpoint(path, params, idx_to_char, config):
    """Parameters, vocabulary and model configuration in one .npz file, written atomically:
    to a temporary file first, then renamed, so an interruption never leaves half a file."""
    with open(path + '.tmp', 'wb') as f:
        np.savez(f, *[p.asnumpy() for p in params], vocab=np.array([ord(c) for c in idx_to_char]),
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
        assert config.pop('format') == 'charrnn'
    except Exception as e:  # whatever a truncated or foreign file raises, the answer is the same
        raise ValueError('%s is not a charrnn checkpoint (%s: %s)' % (path, type(e).__name__, e)) from None
    for p in params:
        p.attach_grad()
    return params, idx_to_char, config


# ---------------------------------------------------------------- command line 命令行
def positive(kind):
    """An argparse type: a number of the given kind greater than zero."""
    def parse(s):
        if kind(s) <= 0:
            raise argparse.ArgumentTypeError('must be greater than 0: %s' % s)
        return kind(s)
    return parse


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a character-level RNN on Jay Chou\'s lyrics (or your text) '
                                'and write new lyrics. Defaults reproduce the seed notebook.',
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a('--data', help='a .zip holding one UTF-8 .txt, or a .txt (default: jaychou_lyrics.txt.zip beside '
      'charrnn.py, downloaded if absent)')
    a('--corpus-chars', type=int, default=10000, help='characters of the corpus to use; 0 for all')
    a('--val-frac', type=float, default=0, help='fraction at the end of the text held out for perplexity')
    a('--cell', choices=CELLS, help='rnn, or the gated gru / lstm (default: rnn, or the checkpoint\'s)')
    a('--hiddens', type=positive(int), help='hidden units (default: 256, or the checkpoint\'s)')
    a('--activation', choices=['relu', 'tanh'], help='φ of the rnn cell (default: relu, or the checkpoint\'s)')
    a('--sampler', choices=['random', 'consecutive', 'both'], default='both',
      help='minibatch sampling; both trains two models, one after the other, as the seed does')
    a('--epochs', type=positive(int), default=1000, help='epochs (for each sampler)')
    a('--num-steps', type=positive(int), default=35, help='time steps per window')
    a('--batch-size', type=positive(int), default=32, help='windows per minibatch')
    a('--lr', type=positive(float), default=100, help='SGD learning rate')
    a('--clip', type=positive(float), default=0.01, help='gradient clipping threshold θ')
    a('--pred-period', type=positive(int), default=100, help='report and sample every this many epochs')
    a('--pred-len', type=int, default=50, help='characters to write after each prefix')
    a('--prefixes', nargs='+', default=['分开', '不分开'], help='prefixes to continue')
    a('--temperature', type=float, default=0, help='0: greedy; > 0: sample from softmax(O / T)')
    a('--seed', type=int, help='random seed: the same seed gives the same numbers on one machine')
    a('--ctx', choices=['auto', 'cpu', 'gpu'], default='auto', help='device; auto takes a working GPU')
    a('--save', metavar='PATH', help='write the model here after training, and on Ctrl-C')
    a('--load', metavar='PATH', help='start from this checkpoint (its cell, size and vocabulary)')
    a('--generate', action='store_true', help='with --load: only write continuations of --prefixes')
    args = p.parse_args(argv)
    for bad, why in [(args.corpus_chars < 0, '--corpus-chars must be 0 or more'),
                     (not 0 <= args.val_frac < 1, '--val-frac must be in [0, 1)'),
                     (args.pred_len < 0, '--pred-len must be 0 or more'),
                     (args.temperature < 0, '--temperature must be 0 or more'),
                     (args.generate and not args.load, '--generate needs --load'),
                     ((args.save or args.load) and not args.generate and args.sampler == 'both',
                      '--save and --load train one model: choose --sampler random or consecutive')]:
        if bad:
            p.error(why)
    return args


def model_config(args, saved):
    """cell, hiddens, activation: from the checkpoint if any (a flag contradicting it is an error)."""
    defaults = {'cell': 'rnn', 'hiddens': 256, 'activation': 'relu'}
    config = saved or defaults
    for key in defaults:
        given = getattr(args, key)
        if saved and given is not None and given != saved[key]:
            raise ValueError('--%s %s contradicts the checkpoint, which has %s' % (key, given, saved[key]))
        config[key] = saved[key] if saved else given if given is not None else defaults[key]
    return config


def run(args):
    if args.seed is not None:
        random.seed(args.seed)
        np.random.seed(args.seed)
        mx.random.seed(args.seed)
    device = {'auto': ctx, 'cpu': mx.cpu()}.get(args.ctx)
    if device is None:
        problem = gpu_problem()
        if problem:
            raise ValueError('--ctx gpu: %s' % problem)
        device = mx.gpu()
    saved_params, idx_to_char, saved = load_checkpoint(args.load, device) if args.load else (None, None, None)
    config = model_config(args, saved)
    get, init_state, cell = CELLS[config['cell']]
    if config['cell'] == 'rnn':
        def cell(inputs, state, params):
            return rnn(inputs, state, params, config['activation'])
    text = None if args.generate else read_text(args.data, args.corpus_chars or None)
    idx_to_char = idx_to_char or sorted(set(text))
    char_to_idx = {c: i for i, c in enumerate(idx_to_char)}
    V, H = len(idx_to_char), config['hiddens']
    params = saved_params or get(V, H, device)

    def samples():
        for prefix in args.prefixes:
            print(' -', predict_rnn(prefix, args.pred_len, cell, params, init_state, H, V, device,
                                    idx_to_char, char_to_idx, args.temperature), flush=True)

    if args.generate:
        return samples()
    for prefix in args.prefixes:  # check them now, not after the first pred_period epochs
        predict_rnn(prefix, 0, cell, params, init_state, H, V, device, idx_to_char, char_to_idx)
    corpus = encode(text, char_to_idx)
    n_val = int(len(corpus) * args.val_frac)
    if n_val and n_val <= args.num_steps:
        raise ValueError('--val-frac %g holds out %d characters: fewer than --num-steps + 1'
                         % (args.val_frac, n_val))
    train, val = corpus[:len(corpus) - n_val], corpus[len(corpus) - n_val:]
    print('%d characters (%d held out), vocabulary %d, %s with %d hidden units on %s'
          % (len(corpus), n_val, V, config['cell'], H, device), flush=True)
    for sampler in ['random', 'consecutive'] if args.sampler == 'both' else [args.sampler]:
        print('== %s sampling, %d epochs' % (sampler, args.epochs), flush=True)
        params = params if params is saved_params or sampler == args.sampler else get(V, H, device)
        try:
            train_and_predict_rnn(cell, lambda: params, init_state, H, V, device, train, idx_to_char,
                                  char_to_idx, sampler == 'random', args.epochs, args.num_steps, args.lr,
                                  args.clip, args.batch_size, args.pred_period, args.pred_len,
                                  args.prefixes, temperature=args.temperature, val_indices=val)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the save short
            print('\ninterrupted: the model as it stands', flush=True)
            if args.save:
                save_checkpoint(args.save, params, idx_to_char, config)
                print('saved to', args.save, flush=True)
            samples()
            sys.exit(130)
    if args.save:
        save_checkpoint(args.save, params, idx_to_char, config)
        print('saved to', args.save)


def main(argv=None):
    try:
        run(parse_args(argv))
    except (ValueError, OSError, FloatingPointError) as e:
        sys.exit('charrnn: error: %s' % e)


if __name__ == '__main__':
    main()
