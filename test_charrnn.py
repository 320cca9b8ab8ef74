"""Tests for charrnn: small corpora made here, a few epochs each; the real corpus where named."""

import hashlib
import math
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import charrnn as d2l  # first: on Python 3.12 it readies numpy for MXNet
import mxnet as mx  # noqa: I100
from mxnet import autograd, nd
from mxnet.gluon import loss as gloss

HERE = pathlib.Path(__file__).resolve().parent
TEXT = '分开 不分开 我想要你 我不想 我不要再想 我不要 分开 就是 不能 不分开 ' * 4
CPU = mx.cpu()
TINY = '--hiddens 16 --num-steps 8 --batch-size 4 --lr 1 --clip 1'.split()  # fast CLI runs


def tiny_vocab(text=TEXT):
    idx_to_char = sorted(set(text))
    return idx_to_char, {c: i for i, c in enumerate(idx_to_char)}


def cli(*args, timeout=120):
    """Run charrnn.py in a new process; (exit code, stdout, stderr)."""
    p = subprocess.run(
        [sys.executable, str(HERE / 'charrnn.py'), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE,
    )
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def corpus_txt(tmp_path):
    path = tmp_path / 'lyrics.txt'
    path.write_text(TEXT, encoding='utf-8')
    return str(path)


@pytest.fixture(scope='module')
def real_corpus():
    try:
        return d2l.load_data_jay_lyrics()
    except FileNotFoundError as e:
        pytest.skip('the real corpus is absent and could not be downloaded: %s' % e)


# ---------------------------------------------------------------- shapes
def test_to_onehot_is_one_matrix_per_step():
    X = nd.arange(10).reshape((2, 5))
    inputs = d2l.to_onehot(X, 12)
    assert len(inputs) == 5 and all(x.shape == (2, 12) for x in inputs)
    assert inputs[3].asnumpy().argmax(axis=1).tolist() == [3, 8]
    assert inputs[3].sum().asscalar() == 2


@pytest.mark.parametrize(
    'cell, n_params, n_state', [('rnn', 5, 1), ('gru', 11, 1), ('lstm', 14, 2)]
)
def test_cells_give_outputs_and_state_of_the_right_shapes(cell, n_params, n_state):
    get_params, init_state, fn = d2l.CELLS[cell]
    params = get_params(30, 16, CPU)
    assert len(params) == n_params
    assert params[0].shape == (30, 16) and params[1].shape == (16, 16) and params[2].shape == (16,)
    assert params[-2].shape == (16, 30) and params[-1].shape == (30,)
    state = init_state(3, 16, CPU)
    outputs, new_state = fn(d2l.to_onehot(nd.array([[1, 2, 3, 4]] * 3), 30), state, params)
    assert len(outputs) == 4 and all(o.shape == (3, 30) for o in outputs)
    assert len(new_state) == n_state and all(s.shape == (3, 16) for s in new_state)


# ---------------------------------------------------------------- clipping and SGD
def make_grads(scale):
    params = [nd.ones((3, 4)), nd.ones((5,))]
    for p, g in zip(params, [nd.full((3, 4), 2.0), nd.arange(5)]):
        p.attach_grad()
        p.grad[:] = g * scale
    return params


def total_norm(params):
    return math.sqrt(sum((p.grad.asnumpy().astype(np.float64) ** 2).sum() for p in params))


def test_clipping_scales_a_large_gradient_to_norm_theta_keeping_its_direction():
    params = make_grads(100.0)
    before = [p.grad.asnumpy() for p in params]
    d2l.grad_clipping(params, 0.5, CPU)
    assert total_norm(params) == pytest.approx(0.5, rel=1e-6)
    ratio = params[0].grad.asnumpy() / before[0]
    assert np.allclose(ratio, ratio.flat[0]) and np.allclose(
        params[1].grad.asnumpy(), before[1] * ratio.flat[0]
    )


def test_clipping_leaves_a_small_gradient_unchanged():
    params = make_grads(0.01)
    before = [p.grad.asnumpy() for p in params]
    assert total_norm(params) < 0.5
    d2l.grad_clipping(params, 0.5, CPU)
    assert all(np.array_equal(p.grad.asnumpy(), b) for p, b in zip(params, before))


def test_sgd_steps_against_the_gradient():
    params = make_grads(1.0)
    d2l.sgd(params, 0.5, 2)
    assert np.allclose(params[0].asnumpy(), 1 - 0.5 * 2.0 / 2)
    assert np.allclose(params[1].asnumpy(), 1 - 0.5 * np.arange(5) / 2)


# ---------------------------------------------------------------- samplers
def test_random_sampler_windows_are_disjoint_shifted_by_one_and_counted():
    corpus, batch_size, num_steps = list(range(100)), 3, 5
    batches = list(d2l.data_iter_random(corpus, batch_size, num_steps))
    assert len(batches) == ((100 - 1) // num_steps) // batch_size == 6
    starts = []
    for X, Y in batches:
        X, Y = X.asnumpy(), Y.asnumpy()
        assert X.shape == Y.shape == (batch_size, num_steps)
        assert np.array_equal(Y, X + 1)
        assert np.array_equal(X, X[:, :1] + np.arange(num_steps))  # contiguous windows
        starts += X[:, 0].tolist()
    assert all(s % num_steps == 0 for s in starts) and len(set(starts)) == len(starts)


def test_consecutive_sampler_batches_continue_each_other():
    corpus, batch_size, num_steps = list(range(100)), 4, 6
    batches = [
        (X.asnumpy(), Y.asnumpy())
        for X, Y in d2l.data_iter_consecutive(corpus, batch_size, num_steps)
    ]
    assert len(batches) == (100 // batch_size - 1) // num_steps == 4
    for (X0, Y0), (X1, _) in zip(batches, batches[1:]):
        assert np.array_equal(Y0, X0 + 1)
        assert np.array_equal(X1[:, 0], X0[:, -1] + 1)  # each row goes on where it stopped
    assert batches[0][0][:, 0].tolist() == [0, 25, 50, 75]


# ---------------------------------------------------------------- data
def test_real_corpus_first_10000_characters(real_corpus):
    corpus_indices, char_to_idx, idx_to_char, vocab_size = real_corpus
    assert len(corpus_indices) == 10000 and vocab_size == 1027 == len(idx_to_char)
    assert idx_to_char == sorted(idx_to_char)  # the same order in every process
    assert ''.join(idx_to_char[i] for i in corpus_indices[:9]) == '想要有直升机 想要'
    assert all(char_to_idx[c] == i for i, c in enumerate(idx_to_char))


def test_text_file_whole_or_cut(corpus_txt):
    corpus, char_to_idx, idx_to_char, vocab_size = d2l.load_data_jay_lyrics(corpus_txt, None)
    assert len(corpus) == len(TEXT) and vocab_size == len(set(TEXT))
    assert len(d2l.load_data_jay_lyrics(corpus_txt, 7)[0]) == 7


def test_line_breaks_of_any_system_become_one_space(tmp_path):
    texts = {'unix.zip': 'ab\ncd\n', 'windows.zip': 'ab\r\ncd\r\n', 'mac.zip': 'ab\rcd\r'}
    for name, text in texts.items():
        with zipfile.ZipFile(tmp_path / name, 'w') as z:
            z.writestr('a.txt', text.encode('utf-8'))
        assert d2l.read_text(tmp_path / name) == 'ab cd '  # a pathlib.Path works too


def test_corrupt_or_wrong_files_are_refused(tmp_path):
    bad = tmp_path / 'bad.zip'
    bad.write_bytes(b'PK\x03\x04 this is not really a zip')
    wrong = tmp_path / 'wrong.zip'
    with zipfile.ZipFile(wrong, 'w') as z:
        z.writestr('a.csv', 'x')
    latin = tmp_path / 'latin.txt'
    latin.write_bytes('café'.encode('latin-1'))
    for path in (bad, wrong, latin):
        with pytest.raises(ValueError):
            d2l.read_text(str(path))
    with pytest.raises(FileNotFoundError):
        d2l.read_text(str(tmp_path / 'absent.zip'))


def test_download_keeps_a_file_with_the_right_checksum(tmp_path):
    source = tmp_path / 'source.zip'
    with zipfile.ZipFile(source, 'w') as z:
        z.writestr('jaychou_lyrics.txt', TEXT.encode('utf-8'))
    sha1 = hashlib.sha1(source.read_bytes()).hexdigest()
    dest = str(tmp_path / 'kept.zip')
    assert d2l.download(source.as_uri(), dest, sha1) == dest
    assert d2l.read_text(dest, None) == TEXT
    bad_dest = str(tmp_path / 'bad.zip')
    with pytest.raises(ValueError, match='SHA-1'):
        d2l.download(source.as_uri(), bad_dest, '0' * 40)
    assert not os.path.exists(bad_dest) and not os.path.exists(bad_dest + '.part')


def test_download_offline_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match='--data'):
        d2l.download('http://127.0.0.1:9/jaychou_lyrics.txt.zip', str(tmp_path / 'x.zip'))


# ---------------------------------------------------------------- model equivalence and gradients
def book_rnn(inputs, state, params):
    """The chapter's RNN as printed (tanh here), one small product per step."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    outputs = []
    for X in inputs:
        H = nd.tanh(nd.dot(X, W_xh) + nd.dot(H, W_hh) + b_h)
        outputs.append(nd.dot(H, W_hq) + b_q)
    return outputs, (H,)


def test_fast_path_and_book_formulation_give_the_same_loss_and_gradients():
    mx.random.seed(0)
    V, H = 40, 24
    params = d2l.get_params(V, H, CPU)
    for p in params:
        p[:] = nd.random.normal(scale=0.3, shape=p.shape)
    X, Y = nd.random.randint(0, V, (5, 7)).astype('float32'), nd.random.randint(
        0, V, (5, 7)
    ).astype('float32')
    results = []
    for cell, loss_fn in [
        (lambda i, s, p: d2l.rnn(i, s, p, 'tanh'), d2l.sequence_loss),
        (
            book_rnn,
            lambda o, y: gloss.SoftmaxCrossEntropyLoss()(
                nd.concat(*o, dim=0), y.T.reshape((-1,))
            ).mean(),
        ),
    ]:
        with autograd.record():
            outputs, _ = cell(d2l.to_onehot(X, V), d2l.init_rnn_state(5, H, CPU), params)
            loss = loss_fn(outputs, Y)
        loss.backward()
        results.append((loss.asscalar(), [p.grad.asnumpy().copy() for p in params]))
    (l1, g1), (l2, g2) = results
    assert l1 == pytest.approx(l2, rel=1e-5)
    for a, b in zip(g1, g2):
        assert np.allclose(a, b, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize('cell', ['rnn', 'gru', 'lstm'])
def test_cell_gradients_match_finite_differences(cell):
    mx.random.seed(1)
    get_params, init_state, fn = d2l.CELLS[cell]
    if cell == 'rnn':  # tanh: smooth, where ReLU's kink would fool a finite difference
        fn = lambda inputs, state, params: d2l.rnn(inputs, state, params, 'tanh')  # noqa: E731
    V, H = 6, 5
    params = get_params(V, H, CPU)
    for p in params:
        p[:] = nd.random.normal(scale=0.5, shape=p.shape)
    X, Y = nd.array([[0, 3, 1, 5], [2, 2, 4, 1]]), nd.array([[3, 1, 5, 0], [2, 4, 1, 3]])

    def loss():
        outputs, _ = fn(d2l.to_onehot(X, V), init_state(2, H, CPU), params)
        return d2l.sequence_loss(outputs, Y)

    with autograd.record():
        value = loss()
    value.backward()
    rng, eps = np.random.RandomState(0), 1e-2
    for p in params:
        grad = p.grad.asnumpy()
        for _ in range(3):
            i = tuple(rng.randint(n) for n in p.shape)
            old = p[i].asscalar()
            p[i] = old + eps
            up = loss().asscalar()
            p[i] = old - eps
            down = loss().asscalar()
            p[i] = old
            assert grad[i] == pytest.approx((up - down) / (2 * eps), rel=0.05, abs=2e-4)


# ---------------------------------------------------------------- prediction
def trained_tiny_model(epochs=30, num_steps=8, lr=1.0, theta=1.0, batch_size=4, hiddens=32):
    """An rnn trained on TEXT with random sampling, reporting once, at the end."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    mx.random.seed(2)
    random.seed(2)
    params = d2l.get_params(V, hiddens, CPU)
    args = (d2l.rnn, lambda: params, d2l.init_rnn_state, hiddens, V, CPU, corpus, idx_to_char)
    d2l.train_and_predict_rnn(
        *args, char_to_idx, True, epochs, num_steps, lr, theta, batch_size, 1000, 10, []
    )
    return d2l.rnn, params, d2l.init_rnn_state, idx_to_char, char_to_idx


@pytest.fixture(scope='module')
def model():
    return trained_tiny_model()


def test_predict_keeps_the_prefix_adds_num_chars_and_is_deterministic(model):
    fn, params, init_state, idx_to_char, char_to_idx = model
    args = (fn, params, init_state, 32, len(idx_to_char), CPU, idx_to_char, char_to_idx)
    out = d2l.predict_rnn('不分', 12, *args)
    assert len(out) == 14 and out.startswith('不分')
    assert d2l.predict_rnn('不分', 12, *args) == out


def test_temperature_zero_is_argmax_and_sampling_spreads_reproducibly(model):
    fn, params, init_state, idx_to_char, char_to_idx = model
    args = (fn, params, init_state, 32, len(idx_to_char), CPU, idx_to_char, char_to_idx)
    greedy = d2l.predict_rnn('我', 1, *args)
    outputs, _ = fn(
        d2l.to_onehot(nd.array([[char_to_idx['我']]]), len(idx_to_char)),
        init_state(1, 32, CPU),
        params,
    )
    assert greedy[1] == idx_to_char[int(outputs[-1].argmax(axis=1).asscalar())]
    mx.random.seed(7)
    hot = d2l.predict_rnn('我', 60, *args, temperature=100)
    assert len(set(hot[1:])) > len(idx_to_char) // 2  # nearly uniform: most characters appear
    mx.random.seed(7)
    assert d2l.predict_rnn('我', 60, *args, temperature=100) == hot


def test_prefix_errors_are_value_errors_naming_the_character(model):
    fn, params, init_state, idx_to_char, char_to_idx = model
    args = (fn, params, init_state, 32, len(idx_to_char), CPU, idx_to_char, char_to_idx)
    with pytest.raises(ValueError, match="'龍'"):
        d2l.predict_rnn('分龍', 5, *args)
    with pytest.raises(ValueError, match='empty'):
        d2l.predict_rnn('', 5, *args)


# ---------------------------------------------------------------- training
def test_training_lowers_perplexity_well_below_the_vocabulary_size(capsys):
    fn, params, init_state, idx_to_char, char_to_idx = trained_tiny_model(epochs=40)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('epoch')]
    perplexity = float(lines[-1].split('perplexity ')[1].split(',')[0])
    assert perplexity < len(idx_to_char) / 4
    corpus = [char_to_idx[c] for c in TEXT]
    held = d2l.evaluate_perplexity(fn, params, init_state, 32, len(idx_to_char), CPU, corpus, 8)
    assert held < len(idx_to_char) / 4


def test_book_protocol_with_a_users_own_cell_and_the_detached_state(capsys):
    """The chapter's code, with its own get_params and rnn, run through charrnn unchanged."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus_indices, vocab_size = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    num_hiddens, ctx = 16, d2l.try_gpu()

    def get_params():
        def _one(shape):
            return nd.random.normal(scale=0.01, shape=shape, ctx=ctx)

        params = [
            _one((vocab_size, num_hiddens)),
            _one((num_hiddens, num_hiddens)),
            nd.zeros(num_hiddens, ctx=ctx),
            _one((num_hiddens, vocab_size)),
            nd.zeros(vocab_size, ctx=ctx),
        ]
        for param in params:
            param.attach_grad()
        return params

    seen = []

    def spy_rnn(inputs, state, params):
        outputs, new_state = book_rnn(inputs, state, params)
        if inputs[0].shape[0] == 4:  # a training batch, not a prediction
            assert len(inputs) == 6 and inputs[0].shape == (4, vocab_size)
            seen.append((state[0], new_state[0]))
        return outputs, new_state

    d2l.train_and_predict_rnn(
        spy_rnn,
        get_params,
        d2l.init_rnn_state,
        num_hiddens,
        vocab_size,
        ctx,
        corpus_indices,
        idx_to_char,
        char_to_idx,
        False,
        2,
        6,
        1e2,
        1e-2,
        4,
        2,
        5,
        ['分开'],
    )
    assert '- 分开' in capsys.readouterr().out
    per_epoch = len(list(d2l.data_iter_consecutive(corpus_indices, 4, 6)))
    batches = seen[:per_epoch]  # epoch 1
    for (_, out_prev), (state_in, _) in zip(batches, batches[1:]):
        assert state_in is not out_prev  # a detached copy, not the previous graph's output
        assert np.array_equal(state_in.asnumpy(), out_prev.asnumpy())  # carrying the same values


def test_hyperparameters_that_leave_no_batch_are_an_error():
    with pytest.raises(ValueError, match='no minibatch'):
        trained_tiny_model(epochs=1, num_steps=len(TEXT), batch_size=2, hiddens=8)


def test_a_nan_loss_stops_training_naming_the_cause():
    with pytest.raises(FloatingPointError, match='learning rate'):
        trained_tiny_model(epochs=3, lr=1e38, theta=1e38, batch_size=2, hiddens=8)


# ---------------------------------------------------------------- device
def test_try_gpu_falls_back_to_the_cpu_when_the_kernel_check_fails(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise mx.base.MXNetError('no kernel image is available for execution on the device')

    monkeypatch.setattr(mx.context, 'num_gpus', lambda: 1)
    monkeypatch.setattr(d2l.nd, 'ones', broken)
    assert d2l.try_gpu() == mx.cpu()
    err = capsys.readouterr().err
    assert 'GPU is unusable: no kernel image' in err and err.count('\n') == 1


@pytest.mark.skipif(shutil.which('gcc') is None, reason='needs gcc to build stand-in libraries')
def test_with_mxnet_cu112_installed_the_wheel_libraries_are_preloaded_at_import(tmp_path):
    """A fake mxnet-cu112 distribution and stand-in CUDA libraries on the path: importing charrnn
    must load them (the CPU MXNet then imports as usual)."""
    dist = tmp_path / 'mxnet_cu112-1.9.1.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: mxnet-cu112\nVersion: 1.9.1\n')
    source = tmp_path / 'empty.c'
    source.write_text('int charrnn_stand_in(void) { return 0; }\n')
    for name in ['libcudart.so.11.0', 'libcudnn.so.8']:
        lib = tmp_path / 'nvidia' / name.split('.')[0][3:] / 'lib'
        lib.mkdir(parents=True)
        subprocess.run(['gcc', '-shared', '-fPIC', '-o', str(lib / name), str(source)], check=True)
    code = (
        'import charrnn, os; print(os.environ["MXNET_CUDNN_LIB_CHECKING"]); '
        'print(open("/proc/self/maps").read())'
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(HERE)]))
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith('0\n')
    assert str(tmp_path / 'nvidia' / 'cudart' / 'lib' / 'libcudart.so.11.0') in p.stdout
    assert str(tmp_path / 'nvidia' / 'cudnn' / 'lib' / 'libcudnn.so.8') in p.stdout


# ---------------------------------------------------------------- command line
def test_help_explains_every_flag():
    code, out, _ = cli('--help')
    assert code == 0
    for flag in [
        '--data',
        '--epochs',
        '--sampler',
        '--num-steps',
        '--batch-size',
        '--lr',
        '--clip',
        '--hiddens',
        '--activation',
        '--pred-period',
        '--pred-len',
        '--prefixes',
        '--seed',
        '--ctx',
        '--corpus-chars',
        '--cell',
        '--temperature',
        '--save',
        '--load',
        '--generate',
        '--val-frac',
    ]:
        assert flag in out


@pytest.mark.parametrize(
    'args, message',
    [
        (['--data', 'absent.zip'], 'No such file'),
        (['--prefixes', '分龍'], "'龍'"),
        (['--prefixes', ''], 'empty'),
        (['--num-steps', '5000'], 'no minibatch'),
        (['--ctx', 'gpu'], '--ctx gpu'),
        (['--val-frac', '0.01'], 'holds out 1 characters'),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(corpus_txt, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(
            ['--data', corpus_txt, '--epochs', '1', '--sampler', 'random', '--hiddens', '8'] + args
        )
    assert exit_info.value.code != 0 and message in str(exit_info.value.code)
    assert str(exit_info.value.code).startswith('charrnn: error:') and '\n' not in str(
        exit_info.value.code
    )


@pytest.mark.parametrize(
    'args',
    [
        ['--epochs', '0'],
        ['--lr', '-1'],
        ['--batch-size', 'x'],
        ['--generate'],
        ['--save', 'm.npz', '--sampler', 'both'],
    ],
)
def test_malformed_flags_are_argparse_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        d2l.parse_args(args)
    assert exit_info.value.code == 2 and 'error:' in capsys.readouterr().err


def test_missing_or_corrupt_corpus_in_a_new_process_is_one_line(tmp_path):
    code, out, err = cli('--data', str(tmp_path / 'none.zip'))
    assert code == 1 and err.startswith('charrnn: error:') and err.strip().count('\n') == 0
    corrupt = tmp_path / 'corrupt.zip'
    corrupt.write_bytes(b'PK\x03\x04' + b'\x00' * 100)
    code, out, err = cli('--data', str(corrupt))
    assert code == 1 and 'corrupt.zip is not a UTF-8 .txt' in err and 'Traceback' not in err


def test_save_then_generate_in_a_new_process_gives_the_same_text(corpus_txt, tmp_path):
    ckpt = str(tmp_path / 'model.npz')
    common = ['--pred-len', '20', '--prefixes', '分开', '我']
    flags = '--sampler random --epochs 10 --pred-period 10 --cell gru --seed 3'.split() + TINY
    code, out, err = cli('--data', corpus_txt, '--save', ckpt, *flags, *common)
    assert code == 0, err
    trained = [line for line in out.splitlines() if line.startswith(' - ')]
    code, out, err = cli('--load', ckpt, '--generate', *common)
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith(' - ')] == trained
    code, _, err = cli('--load', ckpt, '--generate', '--cell', 'lstm')
    assert code == 1 and 'contradicts' in err


def test_a_truncated_checkpoint_is_refused(corpus_txt, tmp_path):
    ckpt = tmp_path / 'model.npz'
    idx_to_char, _ = tiny_vocab()
    d2l.save_checkpoint(
        str(ckpt),
        d2l.get_params(len(idx_to_char), 8, CPU),
        idx_to_char,
        {'cell': 'rnn', 'hiddens': 8, 'activation': 'relu'},
    )
    assert d2l.load_checkpoint(str(ckpt), CPU)[1] == idx_to_char
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(ValueError, match='not a charrnn checkpoint'):
        d2l.load_checkpoint(str(ckpt), CPU)


def test_ctrl_c_stops_saves_a_loadable_checkpoint_and_exits_130(corpus_txt, tmp_path):
    ckpt = str(tmp_path / 'model.npz')
    p = subprocess.Popen(
        [sys.executable, str(HERE / 'charrnn.py'), '--data', corpus_txt, '--save', ckpt]
        + '--sampler random --epochs 100000 --pred-period 1'.split()
        + TINY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().startswith(str(len(TEXT)))  # training has begun
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and 'Traceback' not in err
    assert 'interrupted' in out and ' - 分开' in out.split('interrupted')[1]
    params, idx_to_char, config, _ = d2l.load_checkpoint(ckpt, CPU)
    assert config['hiddens'] == 16 and len(params) == 5 and idx_to_char == tiny_vocab()[0]


def test_held_out_perplexity_is_on_characters_never_trained_on(tmp_path, capsys):
    path = tmp_path / 'two_parts.txt'
    path.write_text('abcd' * 60 + 'dcba' * 20, encoding='utf-8')  # the last quarter runs backwards
    d2l.main(
        ['--data', str(path), '--prefixes', 'a', '--seed', '0', '--val-frac', '0.25']
        + '--sampler consecutive --epochs 60 --pred-period 60'.split()
        + TINY
    )
    out = capsys.readouterr().out.splitlines()
    line = [line for line in out if line.startswith('epoch 60')][0]
    train = float(line.split(' perplexity ')[1].split(',')[0])
    val = float(line.split('val perplexity ')[1].split(',')[0])
    assert train < 1.5 < 3 < val  # it learnt abcd, and dcba was never shown to it


def test_readme_test_command_is_what_ci_runs():
    readme = (HERE / 'README.md').read_text(encoding='utf-8')
    ci = (HERE / '.ci' / 'run').read_text(encoding='utf-8')
    command = [line for line in ci.splitlines() if 'pytest' in line and line[0] != '#'][0].strip()
    assert command in readme


# ---------------------------------------------------------------- hardening
def test_the_loss_is_exact_cross_entropy_with_exact_gradients_for_extreme_logits():
    """A logit gap past 69 once froze the loss at 69 and zeroed that row's gradient."""
    logits = np.array([[0, 200, 0], [1e30, -1e30, 5], [3, 2, 1]], dtype=np.float32)
    y = np.array([0, 1, 2])
    outputs = [nd.array(row[None, :]) for row in logits]  # three steps of a batch of one
    for o in outputs:
        o.attach_grad()
    with autograd.record():
        loss = d2l.sequence_loss(outputs, nd.array(y[None, :]))
    loss.backward()
    exact = logits.astype(np.float64)
    top = exact.max(axis=1)
    lse = top + np.log(np.exp(exact - top[:, None]).sum(axis=1))  # log-sum-exp per row
    assert loss.asscalar() == pytest.approx((lse - exact[np.arange(3), y]).mean(), rel=1e-6)
    expected = np.exp(exact - lse[:, None])
    expected[np.arange(3), y] -= 1
    grads = np.concatenate([o.grad.asnumpy() for o in outputs])
    assert np.allclose(grads, expected / 3, atol=1e-6) and grads[0, 0] < -0.3


def test_a_tiny_temperature_draws_the_likeliest_and_nan_or_inf_is_refused(model):
    fn, params, init_state, idx_to_char, char_to_idx = model
    args = (fn, params, init_state, 32, len(idx_to_char), CPU, idx_to_char, char_to_idx)
    greedy = d2l.predict_rnn('分开', 20, *args)
    for temperature in [1e-39, 1e-300]:  # O / T overflowed float32: NaN, then index 0 drawn
        assert d2l.predict_rnn('分开', 20, *args, temperature=temperature) == greedy
    for bad in [float('nan'), float('inf'), -1]:
        with pytest.raises(ValueError, match='temperature'):
            d2l.predict_rnn('分开', 5, *args, temperature=bad)


def test_an_unknown_activation_is_an_error_naming_the_choices():
    params = d2l.get_params(5, 4, CPU)
    inputs = d2l.to_onehot(nd.array([[1, 2]]), 5)
    for bad in ['sigmoid', 'ReLU']:
        with pytest.raises(ValueError, match="'relu' or 'tanh'"):
            d2l.rnn(inputs, d2l.init_rnn_state(1, 4, CPU), params, activation=bad)


def test_lstm_state_is_two_arrays_and_text_files_take_a_path(corpus_txt):
    H, C = d2l.init_lstm_state(2, 3, CPU)
    H[:] = 1
    assert H is not C and C.sum().asscalar() == 0
    assert d2l.read_text(pathlib.Path(corpus_txt), None) == TEXT


def test_held_out_text_too_short_for_a_window_is_an_error_and_any_sequence_works():
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    params = d2l.get_params(V, 8, CPU)
    with pytest.raises(ValueError, match='held-out'):
        d2l.evaluate_perplexity(d2l.rnn, params, d2l.init_rnn_state, 8, V, CPU, corpus[:8], 8)
    history = {}
    d2l.train_and_predict_rnn(
        d2l.rnn, lambda: params, d2l.init_rnn_state, 8, V, CPU, corpus, idx_to_char,
        char_to_idx, True, 5, 8, 1.0, 1.0, 4, 2, 5, [], val_indices=np.array(corpus[:40]),
        history=history,
    )
    assert len(history['train']) == 5 and [epoch for epoch, _ in history['val']] == [2, 4, 5]
    assert all(p > 1 for p in history['train']) and all(p > 1 for _, p in history['val'])


@pytest.mark.parametrize('cell', ['rnn', 'gru', 'lstm'])
def test_the_trainer_takes_charrnns_own_get_params(cell, capsys):
    get_params, init_state, fn = d2l.CELLS[cell]
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    params = d2l.train_and_predict_rnn(
        fn, get_params, init_state, 8, V, CPU, corpus, idx_to_char, char_to_idx, False, 1, 8,
        1.0, 1.0, 4, 1, 5, ['分开'],
    )
    assert len(params) == len(get_params(V, 8, CPU)) and params[0].shape == (V, 8)
    assert '- 分开' in capsys.readouterr().out


def test_save_path_is_checked_before_training_and_never_leaves_a_temporary_file(
    corpus_txt, tmp_path, capsys
):
    for path, message in [(tmp_path / 'no' / 'm.npz', 'No such file'), (tmp_path, 'exists'),
                          (pathlib.Path(corpus_txt) / 'm.npz', 'Not a directory')]:
        with pytest.raises(SystemExit) as exit_info:
            d2l.main(['--data', corpus_txt, '--sampler', 'random', '--save', str(path)] + TINY)
        assert message in str(exit_info.value.code) and 'epoch' not in capsys.readouterr().out
    idx_to_char, _ = tiny_vocab()
    params = d2l.get_params(len(idx_to_char), 8, CPU)
    with pytest.raises(OSError):  # the rename onto a folder fails
        d2l.save_checkpoint(str(tmp_path), params, idx_to_char, {'cell': 'rnn'})
    assert not list(tmp_path.parent.glob('*.tmp')) and not list(tmp_path.glob('*.tmp'))


def test_ctrl_c_in_a_notebook_leaves_ctrl_c_working(corpus_txt, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(d2l, 'train_and_predict_rnn', interrupted)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(['--data', corpus_txt, '--sampler', 'random'] + TINY)
    assert exit_info.value.code == 130 and 'interrupted' in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is handler


def test_main_runs_from_a_thread_which_may_not_touch_signals(corpus_txt, capsys):
    import threading

    errors = []

    def train():
        try:
            d2l.main(['--data', corpus_txt, '--sampler', 'random', '--epochs', '1'] + TINY)
        except BaseException as e:  # noqa: B902 (any escape is the failure)
            errors.append(e)

    thread = threading.Thread(target=train)
    thread.start()
    thread.join(timeout=120)
    assert errors == [] and 'epoch 1,' in capsys.readouterr().out


def test_a_file_in_another_encoding_is_named_in_one_short_line(tmp_path):
    path = tmp_path / 'gbk.txt'
    path.write_bytes('分开 不分开 '.encode('gbk') * 5000)
    with pytest.raises(ValueError) as error_info:
        d2l.read_text(path)
    message = str(error_info.value)
    assert 'UnicodeDecodeError' in message and 'not a UTF-8' in message and len(message) < 300


@pytest.mark.parametrize(
    'text, message',
    [('', '0 distinct'), ('aaaaaaaaaaaaaaaa', '1 distinct'), ('ab' * 8, 'no minibatch')],
)
def test_a_text_too_small_to_learn_from_is_one_line(tmp_path, text, message, capsys):
    path = tmp_path / 'small.txt'
    path.write_text(text, encoding='utf-8')
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(['--data', str(path), '--sampler', 'random', '--prefixes', 'a'] + TINY)
    assert str(exit_info.value.code).startswith('charrnn: error:')
    assert message in str(exit_info.value.code) and '\n' not in str(exit_info.value.code)


@pytest.mark.parametrize(
    'args, message',
    [
        (['--cell', 'gru', '--activation', 'tanh'], 'rnn only'),
        (['--val-frac', '0.005'], 'holds out 0 characters'),
    ],
)
def test_flags_that_would_do_nothing_are_refused(corpus_txt, args, message):
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(['--data', corpus_txt, '--sampler', 'random'] + TINY + args)
    assert message in str(exit_info.value.code)


def test_a_gru_checkpoint_refuses_an_activation_and_generate_refuses_training_flags(
    tmp_path, capsys
):
    ckpt = str(tmp_path / 'gru.npz')
    idx_to_char, _ = tiny_vocab()
    params = d2l.get_gru_params(len(idx_to_char), 8, CPU)
    d2l.save_checkpoint(ckpt, params, idx_to_char, {'cell': 'gru', 'hiddens': 8})
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(['--load', ckpt, '--generate', '--activation', 'tanh'])
    assert 'rnn only' in str(exit_info.value.code)
    for flags in [['--save', 'x.npz'], ['--data', 'x.txt'], ['--epochs', '3'],
                  ['--val-frac', '0.1'], ['--sampler', 'random'], ['--plot', 'x.png']]:
        with pytest.raises(SystemExit) as exit_info:
            d2l.parse_args(['--load', ckpt, '--generate'] + flags)
        assert exit_info.value.code == 2 and flags[0] in capsys.readouterr().err
    d2l.main(['--load', ckpt, '--generate', '--prefixes', '分', '--pred-len', '3'])
    assert capsys.readouterr().out.startswith(' - 分')


def test_the_start_line_counts_held_out_characters_unseen_in_training(tmp_path, capsys):
    path = tmp_path / 'text.txt'
    path.write_text('abcd' * 40 + 'abxy' * 10, encoding='utf-8')  # x and y only in the end
    d2l.main(['--data', str(path), '--sampler', 'random', '--val-frac', '0.2', '--epochs', '1',
              '--prefixes', 'a'] + TINY)
    out = capsys.readouterr().out
    assert out.startswith('200 characters, vocabulary 6:')
    # 40 held out; the first is only read, then 1 window of 35 (TINY: 8): 32 scored, 16 x and y
    assert 'held out: the last 40 characters, 32 of them scored, 16 unseen in training' in out


def test_help_names_each_default_once_and_calls_the_notebook_the_notebook():
    code, out, _ = cli('--help')
    assert code == 0 and 'None' not in out and 'notebook' in out and 'the seed' not in out
    helps = ' '.join(out.split()).split(' --')  # one entry per flag, its lines joined
    assert all(entry.count('(default') <= 1 for entry in helps)


# ---------------------------------------------------------------- following and keeping long runs
def test_on_a_terminal_a_status_line_is_rewritten_and_logs_stay_clean(corpus_txt):
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, str(HERE / 'charrnn.py'), '--data', corpus_txt, '--sampler', 'random',
         '--epochs', '6', '--pred-period', '3'] + TINY,
        stdout=subprocess.PIPE, stderr=slave, cwd=HERE,
    )
    os.close(slave)
    err = b''
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the run is over
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read().decode('utf-8')
    assert p.wait(timeout=60) == 0
    os.close(master)
    statuses = err.decode('utf-8').split('\r\x1b[K')
    assert [s.split(',')[0] for s in statuses if s.startswith('random')] == [
        'random: epoch %d/6' % i for i in range(1, 7)
    ]
    assert 'chars/s, ETA' in statuses[1] and '\r' not in out
    assert [line.split(',')[0] for line in out.splitlines() if line.startswith('epoch')] == [
        'epoch 3', 'epoch 6'
    ]
    code, out, err = cli('--data', corpus_txt, '--sampler', 'random', '--epochs', '3', *TINY)
    assert code == 0 and '\r' not in out + err and 'chars/s' in out


def test_save_keeps_the_model_of_lowest_held_out_perplexity(real_corpus, tmp_path, capsys):
    ckpt = str(tmp_path / 'best.npz')
    d2l.main(
        '--corpus-chars 4000 --hiddens 64 --val-frac 0.2 --sampler random --epochs 60 '
        '--pred-period 5 --seed 1 --pred-len 5 --prefixes 分开 --save'.split() + [ckpt]
    )  # held-out perplexity here: 876 at epoch 5, lowest (318) at 25, 420 at 60
    out = capsys.readouterr().out
    reports = [line for line in out.splitlines() if line.startswith('epoch')]
    val = {int(r.split()[1][:-1]): float(r.split('val perplexity ')[1].split(',')[0])
           for r in reports}
    best_epoch = min(val, key=val.get)
    assert 5 < best_epoch < 60 and val[60] > 1.2 * val[best_epoch]  # it fell, then rose
    saved = [line for line in out.splitlines() if line.startswith('saved:')]
    assert len(saved) > 1  # written again each time it improved
    best = 'saved: best val perplexity %.2f at epoch %d' % (val[best_epoch], best_epoch)
    assert saved[-1] == best
    params, idx_to_char, config, _ = d2l.load_checkpoint(ckpt, CPU)
    corpus = d2l.load_data_jay_lyrics(None, 4000)[0]
    _, init_state, cell = d2l.cell_functions(config)
    held_out = d2l.evaluate_perplexity(cell, params, init_state, 64, len(idx_to_char), CPU,
                                       corpus[-800:], 35)
    assert held_out == pytest.approx(val[best_epoch], abs=0.01)


def test_plot_draws_each_report_and_without_matplotlib_stops_before_training(
    corpus_txt, tmp_path
):
    flags = ['--data', corpus_txt, '--epochs', '4', '--pred-period', '2', '--val-frac', '0.3',
             *TINY]
    for name, magic in [('p.png', b'\x89PNG'), ('p.svg', b'<?xml'), ('p.pdf', b'%PDF')]:
        code, _, err = cli(*flags, '--plot', str(tmp_path / name))
        assert code == 0, err
        assert (tmp_path / name).read_bytes().startswith(magic)
    stand_in = tmp_path / 'site' / 'matplotlib'
    stand_in.mkdir(parents=True)
    (stand_in / '__init__.py').write_text("raise ImportError('stand-in: no matplotlib here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / 'site'))
    p = subprocess.run(
        [sys.executable, str(HERE / 'charrnn.py'), *flags, '--plot', str(tmp_path / 'q.png')],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert p.returncode == 1 and p.stdout == '' and p.stderr.count('\n') == 1
    assert 'pip install matplotlib' in p.stderr and not (tmp_path / 'q.png').exists()
    code, _, err = cli('--data', str(tmp_path / 'absent.txt'), '--plot', str(tmp_path / 'r.png'))
    assert code == 1 and not (tmp_path / 'r.png').exists()  # nothing drawn for a run that fails


# ---------------------------------------------------------------- when MXNet cannot load
@pytest.mark.parametrize(
    'error, advice',
    [
        ("OSError('libarmpl_lp64_mp.so: cannot open shared object file')", 'Arm Performance'),
        ("ImportError('stand-in: no mxnet')", 'pip install -r requirements.txt'),
    ],
)
def test_when_mxnet_cannot_load_the_command_line_says_so_in_one_line(tmp_path, error, advice):
    (tmp_path / 'mxnet').mkdir()
    (tmp_path / 'mxnet' / '__init__.py').write_text('raise %s\n' % error)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    cause = error.split("'")[1]
    p = subprocess.run([sys.executable, str(HERE / 'charrnn.py'), '--help'], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 1 and p.stdout == '' and p.stderr.count('\n') == 1
    assert p.stderr.startswith('charrnn: error: cannot import mxnet') and cause in p.stderr
    assert advice in p.stderr
    p = subprocess.run([sys.executable, '-c', 'import charrnn'], capture_output=True, text=True,
                       env=env, cwd=HERE)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 1 and last.startswith('ImportError: cannot import mxnet')
    assert cause in last and advice in last


@pytest.mark.skipif(sys.version_info < (3, 9), reason='numpy 2 has no release for Python 3.8')
def test_with_numpy_2_the_command_line_says_to_install_numpy_below_2(tmp_path):
    """For real: MXNet 1.9.1 beside numpy 2, in a new virtual environment (pip, about 10 s)."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    pip = [str(venv / 'bin' / 'python'), '-m', 'pip', 'install', '-q']
    subprocess.run(pip + ['numpy>=2', 'requests'], check=True)
    subprocess.run(pip + ['--no-deps', 'mxnet==1.9.1'], check=True)
    p = subprocess.run([str(venv / 'bin' / 'python'), str(HERE / 'charrnn.py')],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.count('\n') == 1
    assert p.stderr.startswith('charrnn: error: cannot import mxnet (AttributeError:')
    assert "numpy<2" in p.stderr and 'NumPy 2' in p.stderr


# ---------------------------------------------------------------- threads on a busy machine
def test_with_every_cpu_busy_charrnn_takes_one_thread_and_a_users_setting_wins():
    """The collapse (threads spinning for a core that another program holds) cannot come back:
    with a busy loop on every CPU charrnn's import picks one OpenMP thread."""
    code = 'import charrnn, os; print(os.environ["OMP_NUM_THREADS"])'
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    busy = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
            for _ in range(os.cpu_count())]
    try:
        time.sleep(0.5)
        p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=HERE,
                           env=env)
        assert p.stdout.strip() == '1', p.stderr
        p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=HERE,
                           env=dict(env, OMP_NUM_THREADS='3'))
        assert p.stdout.strip() == '3', p.stderr
    finally:
        for b in busy:
            b.kill()
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=HERE,
                       env=env)  # a quieter machine: more, one a core at most
    assert 1 <= int(p.stdout) <= os.cpu_count()
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=HERE,
                       env=env, preexec_fn=lambda: os.sched_setaffinity(0, {0}))  # taskset -c 0
    assert p.stdout.strip() == '1', p.stderr


# ---------------------------------------------------------------- generalising: dropout, Adam
def test_dropout_keeps_the_expectation_and_drops_the_share_asked():
    X = nd.ones((1000, 1000))
    Y = d2l.dropout(X, 0.3).asnumpy()
    assert abs((Y == 0).mean() - 0.3) < 0.005 and abs(Y.mean() - 1) < 0.01
    assert np.allclose(np.unique(Y), [0, 1 / 0.7])  # dropped, or scaled by 1 / (1 - p)
    assert d2l.dropout(X, 0).asnumpy().min() == 1 and d2l.dropout(X, 1).asnumpy().max() == 0
    with pytest.raises(ValueError, match='drop_prob'):
        d2l.dropout(X, 1.5)


@pytest.mark.parametrize('cell', ['rnn', 'gru', 'lstm'])
def test_dropout_acts_while_training_only(cell):
    """Under autograd.record() the outputs change; outside it (held-out perplexity, prediction)
    the same parameters give exactly what they give with no dropout configured."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    plain = {'cell': cell, 'hiddens': 8, 'activation': 'relu'}
    get, init_state, fn = d2l.cell_functions(plain)
    _, _, dropped = d2l.cell_functions(dict(plain, dropout=0.5))
    mx.random.seed(4)
    params = get(V, 8, CPU)
    for p in params:
        p[:] = nd.random.normal(scale=0.5, shape=p.shape)
    inputs = d2l.to_onehot(nd.array([corpus[:6]] * 3), V)
    with autograd.record():
        trained = dropped(inputs, init_state(3, 8, CPU), params)[0][-1].asnumpy()
    outside = dropped(inputs, init_state(3, 8, CPU), params)[0][-1].asnumpy()
    assert not np.allclose(trained, outside)
    assert np.array_equal(outside, fn(inputs, init_state(3, 8, CPU), params)[0][-1].asnumpy())
    args = (params, init_state, 8, V, CPU)
    assert (d2l.evaluate_perplexity(dropped, *args, corpus, 8)
            == d2l.evaluate_perplexity(fn, *args, corpus, 8))
    assert (d2l.predict_rnn('分开', 10, dropped, *args, idx_to_char, char_to_idx)
            == d2l.predict_rnn('分开', 10, fn, *args, idx_to_char, char_to_idx))


def test_adam_follows_the_books_formulas_step_by_step():
    rng = np.random.RandomState(0)
    values = [rng.randn(3, 4), rng.randn(5)]
    params = [nd.array(v) for v in values]
    for p in params:
        p.attach_grad()
    states = d2l.init_adam_states(params)
    hyperparams = {'lr': 0.01, 't': 1, 'wd': 0.1}
    w = [v.astype(np.float64) for v in values]
    v_np = [np.zeros_like(x) for x in w]
    s_np = [np.zeros_like(x) for x in w]
    for t in range(1, 5):
        grads = [rng.randn(*x.shape) for x in w]
        for p, g in zip(params, grads):
            p.grad[:] = g
        d2l.adam(params, states, hyperparams)
        for i, g in enumerate(grads):  # the book's Adam, in numpy, with AdamW's decay
            v_np[i] = 0.9 * v_np[i] + 0.1 * g
            s_np[i] = 0.999 * s_np[i] + 0.001 * g ** 2
            v_hat, s_hat = v_np[i] / (1 - 0.9 ** t), s_np[i] / (1 - 0.999 ** t)
            w[i] = w[i] - 0.01 * (v_hat / (np.sqrt(s_hat) + 1e-6) + 0.1 * w[i])
        assert hyperparams['t'] == t + 1
        for p, x in zip(params, w):
            assert np.allclose(p.asnumpy(), x, rtol=1e-5, atol=1e-6)


def test_weight_decay_shrinks_a_weight_without_gradient_by_lr_times_wd():
    for update in ['sgd', 'adam']:
        params = [nd.full((2, 3), 2.0)]
        params[0].attach_grad()
        params[0].grad[:] = 0
        if update == 'sgd':
            d2l.sgd(params, 0.5, 1, wd=0.1)
        else:
            d2l.adam(params, d2l.init_adam_states(params), {'lr': 0.5, 't': 1, 'wd': 0.1})
        assert np.allclose(params[0].asnumpy(), 2.0 * (1 - 0.5 * 0.1)), update


def test_training_with_adam_lowers_the_loss_and_its_state_goes_on_from_a_checkpoint(tmp_path):
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    mx.random.seed(5)
    params = d2l.get_lstm_params(V, 16, CPU)
    adam_state = (d2l.init_adam_states(params), {'t': 1})
    history = {}
    d2l.train_and_predict_rnn(d2l.lstm, lambda: params, d2l.init_lstm_state, 16, V, CPU, corpus,
                              idx_to_char, char_to_idx, False, 20, 8, 0.01, 1, 4, 20, 5, [],
                              history=history, adam_state=adam_state)
    assert history['train'][-1] < history['train'][0] / 2
    steps = 20 * len(list(d2l.data_iter_consecutive(corpus, 4, 8)))
    assert adam_state[1]['t'] == steps + 1
    path = str(tmp_path / 'adam.npz')
    d2l.save_checkpoint(path, params, idx_to_char, {'cell': 'lstm', 'hiddens': 16}, adam_state)
    _, _, config, loaded = d2l.load_checkpoint(path, CPU)
    assert loaded[1] == {'t': steps + 1} and 'adam_t' not in config
    for (v, s), (v2, s2) in zip(adam_state[0], loaded[0]):
        assert np.array_equal(v.asnumpy(), v2.asnumpy()) and np.array_equal(s.asnumpy(),
                                                                            s2.asnumpy())


@pytest.mark.parametrize(
    'flags, message',
    [(['--dropout', '1'], '--dropout'), (['--dropout', '-0.1'], '--dropout'),
     (['--dropout', 'nan'], '--dropout'), (['--weight-decay', '-1'], 'weight'),
     (['--lr', '1e39'], 'below'), (['--lr', 'inf'], 'finite'),
     (['--clip', 'nan'], 'greater than 0')],
)
def test_bad_values_of_the_new_flags_are_one_line_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        d2l.parse_args(flags + ['--sampler', 'random'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err.splitlines()[-1]


def test_the_optimizer_brings_its_own_learning_rate_and_threshold():
    config = d2l.model_config(d2l.parse_args(['--optimizer', 'adam']))
    assert (config['lr'], config['clip'], config['dropout']) == (0.002, 1, 0)
    config = d2l.model_config(d2l.parse_args([]))
    assert (config['optimizer'], config['lr'], config['clip']) == ('sgd', 100, 0.01)
    saved = dict(config, optimizer='adam', lr=0.005, clip=2, dropout=0.2)
    assert d2l.model_config(d2l.parse_args([]), saved)['lr'] == 0.005  # --load goes on as it was
    assert d2l.model_config(d2l.parse_args(['--optimizer', 'sgd']), saved)['lr'] == 100
    assert d2l.model_config(d2l.parse_args(['--dropout', '0.3']))['dropout'] == 0.3


# ---------------------------------------------------------------- the count baseline, copies
def test_kneser_ney_matches_the_counts_by_hand_and_sums_to_one():
    prob = d2l.kneser_ney('abab', 3, order=2)  # vocabulary a, b, c; c never seen
    # continuation counts of a and b: 1 each, + 0.5; D = n1 / (n1 + 2 n2) = 1 / 3 for ab:2, ba:1
    assert prob('b', 'a') == pytest.approx((2 - 1 / 3 + 1 / 3 * 1.5 / 3.5) / 2)  # 19/21
    assert prob('a', 'a') == pytest.approx(1 / 14) and prob('c', 'a') == pytest.approx(1 / 42)
    assert prob('a', 'c') == pytest.approx(1.5 / 3.5)  # an unseen context: the lower order
    text = TEXT[:150]
    vocab = sorted(set(TEXT)) + ['龍']  # one character the text never has
    prob = d2l.kneser_ney(text, len(vocab), order=5)
    for context in [text[10:14], text[:2], '', '龍龍龍龍', text[3:5] + '龍龍']:
        assert sum(prob(c, context) for c in vocab) == pytest.approx(1, abs=1e-12), context


def test_the_baseline_scores_the_targets_that_val_perplexity_scores(real_corpus):
    text = d2l.read_text(None, 10000)
    value = d2l.baseline_perplexity(text[:9000], text[9000:], len(set(text)), 35)
    prob = d2l.kneser_ney(text[:9000], len(set(text)), 5)
    n = (1000 - 1) // 35 * 35  # 980 targets: text[9001:9981]
    nll = -sum(math.log(prob(text[j], text[j - 4:j])) for j in range(9001, 9001 + n))
    assert value == pytest.approx(math.exp(nll / n)) and 100 < value < 140  # measured: 116.9


def test_the_longest_copy_is_found_whatever_its_place():
    text = 'the cat sat on the mat'
    assert d2l.longest_copy('a cat sat down', text) == ' cat sat '
    assert d2l.longest_copy('xyz', text) == '' and d2l.longest_copy('mat', text) == 'mat'
    assert d2l.longest_copy('on the matron', text) == 'on the mat'
    assert d2l.sample_line('a', 'a cat sat', text) == ' - a cat sat  [copied 8/8]'
    assert d2l.sample_line('a', 'a cat sat') == ' - a cat sat'


# ---------------------------------------------------------------- nothing lost, nothing cryptic
def tiny_checkpoint(path, config=None, hiddens=8):
    idx_to_char, _ = tiny_vocab()
    params = d2l.get_params(len(idx_to_char), hiddens, CPU)
    d2l.save_checkpoint(str(path), params, idx_to_char,
                        config or {'cell': 'rnn', 'hiddens': hiddens, 'activation': 'relu'})
    return path


def test_a_better_model_in_the_save_file_is_never_overwritten(corpus_txt, tmp_path, capsys):
    ckpt = tmp_path / 'm.npz'
    common = ['--data', corpus_txt, '--val-frac', '0.25', '--sampler', 'consecutive',
              '--save', str(ckpt), '--prefixes', '分', '--pred-len', '2', '--seed', '0'] + TINY
    d2l.main(common + ['--epochs', '40', '--pred-period', '10'])
    before = ckpt.read_bytes()
    best = float(capsys.readouterr().out.split('saved: best val perplexity ')[-1].split()[0])
    d2l.main(common + ['--load', str(ckpt), '--epochs', '2', '--pred-period', '1',
                       '--weight-decay', '0.5'])  # each step halves the weights: worse
    out = capsys.readouterr().out
    assert 'holds a model of val perplexity %.2f: only a better one' % best in out
    assert 'saved' not in out.replace('holds', '') and ckpt.read_bytes() == before
    p = subprocess.Popen([sys.executable, str(HERE / 'charrnn.py')] + common
                         + ['--load', str(ckpt), '--epochs', '100000', '--pred-period', '100000'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while 'sampling' not in p.stdout.readline():  # training has begun
        pass
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and 'saved' not in out and ckpt.read_bytes() == before  # unscored


def test_sgd_on_an_adam_checkpoint_is_sgd_and_an_unscored_ctrl_c_says_nothing_was_saved(
        corpus_txt, tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / 'a.npz'
    common = ['--data', corpus_txt, '--sampler', 'random', '--save', str(ckpt), '--prefixes', '分',
              '--pred-len', '2', '--epochs', '2'] + TINY
    d2l.main(common + ['--optimizer', 'adam', '--lr', '0.01'])
    assert d2l.load_checkpoint(str(ckpt), CPU)[3] is not None

    def no_adam(*args):
        raise AssertionError('Adam ran for --optimizer sgd')

    monkeypatch.setattr(d2l, 'adam', no_adam)
    d2l.main(common + ['--load', str(ckpt), '--optimizer', 'sgd'])
    _, _, config, adam_state = d2l.load_checkpoint(str(ckpt), CPU)
    assert config['optimizer'] == 'sgd' and adam_state is None
    capsys.readouterr()
    p = subprocess.Popen([sys.executable, str(HERE / 'charrnn.py'), '--data', corpus_txt,
                          '--val-frac', '0.25', '--sampler', 'random', '--save',
                          str(tmp_path / 'v.npz'), '--epochs', '100000', '--pred-period', '100000',
                          '--prefixes', '分', '--pred-len', '2'] + TINY,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while 'sampling' not in p.stdout.readline():  # training has begun
        pass
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130 and not (tmp_path / 'v.npz').exists()
    assert 'nothing saved to %s: no report has scored a model yet' % (tmp_path / 'v.npz') in out


def test_a_file_written_keeps_its_mode_or_takes_the_umask_and_a_link_is_written_through(
        tmp_path):
    import stat

    target = tmp_path / 'real.npz'
    target.write_bytes(b'old')
    os.chmod(target, 0o640)
    link = tmp_path / 'link.npz'
    link.symlink_to(target)
    d2l.write_file(str(link), b'new')
    assert link.is_symlink() and target.read_bytes() == b'new'
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # mkstemp's 0600 would hide it
    umask = os.umask(0o027)
    try:
        d2l.write_file(str(tmp_path / 'fresh.png'), b'png')
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / 'fresh.png').stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ['fresh.png', 'link.npz', 'real.npz']


def test_save_never_destroys_a_file_that_is_not_a_checkpoint(corpus_txt, tmp_path):
    corpus = pathlib.Path(corpus_txt)
    notes = tmp_path / 'notes'
    notes.write_text('my notes')
    (tmp_path / 'notes.tmp').write_text('mine too')
    for save, data, message in [(corpus_txt, corpus_txt, 'exists'), (str(notes), corpus_txt,
                                'exists'), (str(tmp_path / 'new'), str(tmp_path / 'absent.txt'),
                                'No such file')]:  # the last: a run that fails
        code, out, err = cli('--data', data, '--save', save, '--sampler', 'random', *TINY)
        assert code == 1 and message in err and err.count('\n') == 1, err
    assert corpus.read_text(encoding='utf-8') == TEXT and notes.read_text() == 'my notes'
    assert (tmp_path / 'notes.tmp').read_text() == 'mine too'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lyrics.txt', 'notes', 'notes.tmp']


def test_a_full_disk_keeps_the_previous_file_whole_and_says_so(corpus_txt, tmp_path):
    import resource

    ckpt = tiny_checkpoint(tmp_path / 'full.npz', hiddens=16)
    before = ckpt.read_bytes()

    def small_files():  # as `ulimit -f 2` would: no file written past 2 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    p = subprocess.run([sys.executable, str(HERE / 'charrnn.py'), '--data', corpus_txt, '--load',
                        str(ckpt), '--save', str(ckpt), '--sampler', 'random', '--epochs', '4',
                        '--pred-period', '2', '--num-steps', '8', '--batch-size', '4'],
                       capture_output=True, text=True, preexec_fn=small_files)
    assert p.returncode == 1 and 'epoch 2' not in p.stdout  # the report after the save failed
    assert p.stderr == 'charrnn: error: cannot write %s (File too large): it is as it was\n' % ckpt
    assert ckpt.read_bytes() == before and len(list(tmp_path.iterdir())) == 2  # no .tmp left


def test_output_that_cannot_show_chinese_or_is_closed_still_keeps_the_model(corpus_txt, tmp_path):
    ckpt = tmp_path / 'm.npz'
    flags = ['--data', corpus_txt, '--save', str(ckpt), '--sampler', 'random', *TINY]
    env = dict(os.environ, PYTHONIOENCODING='latin-1')
    p = subprocess.run([sys.executable, str(HERE / 'charrnn.py'), *flags, '--epochs', '2',
                        '--pred-period', '1'], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and p.stdout.count('saved to') == 2 and ' - ??' in p.stdout
    ckpt.unlink()
    p = subprocess.Popen([sys.executable, str(HERE / 'charrnn.py'), *flags, '--epochs', '100000',
                          '--pred-period', '1'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(2):  # as `| head -n 2` does: two lines, then the pipe is closed
        p.stdout.readline()
    p.stdout.close()
    assert p.wait(timeout=60) == 141 and p.stderr.read() == b''
    assert d2l.load_checkpoint(str(ckpt), CPU)[2]['hiddens'] == 16


@pytest.mark.parametrize('flag', ['--data', '--save', '--load', '--plot'])
def test_an_empty_path_is_refused_naming_its_flag(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        d2l.parse_args([flag, '', '--sampler', 'random'])
    assert exit_info.value.code == 2 and flag + ' needs a path' in capsys.readouterr().err


def broken_zip(path, how):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('a.txt', TEXT.encode('utf-8') * 20)
    data = bytearray(path.read_bytes())
    central = data.index(b'PK\x01\x02')
    if how == 'flipped':
        data[45:60] = bytes(b ^ 0xFF for b in data[45:60])
    elif how == 'encrypted':
        data[central + 8] |= 1
    else:  # Deflate64, which zipfile cannot read
        data[central + 10] = 9
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize('how', ['flipped', 'encrypted', 'deflate64'])
def test_a_broken_zip_is_one_line_naming_the_file(tmp_path, how):
    path = broken_zip(tmp_path / ('%s.zip' % how), how)
    with pytest.raises(ValueError, match='%s is not a UTF-8 .txt' % path):
        d2l.read_text(path)
    code, out, err = cli('--data', str(path))
    assert code == 1 and err.startswith('charrnn: error: %s' % path) and err.count('\n') == 1


def test_zips_by_any_case_and_a_byte_order_mark(tmp_path):
    path = tmp_path / 'upper.zip'
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('LYRICS.TXT', '\ufeff分开 分开'.encode('utf-8'))
    assert d2l.read_text(path) == '分开 分开'  # the mark is not a character
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('a.csv', 'x')
    with pytest.raises(ValueError, match='holds no .txt'):
        d2l.read_text(path)


@pytest.mark.parametrize(
    'flags, message',
    [(['--hiddens', '100000000'], '2^31'),
     (['--batch-size', '99999999999999999999', '--sampler', 'consecutive'], 'no minibatch'),
     (['--corpus-chars', '34', '--sampler', 'both'],  # enough for random sampling only
      'consecutive sampling needs 36 characters or more')],
)
def test_settings_too_large_for_mxnet_or_the_text_stop_before_training(corpus_txt, flags,
                                                                       message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(['--data', corpus_txt, '--sampler', 'random'] + TINY + flags)
    assert message in str(exit_info.value.code) and '== ' not in capsys.readouterr().out


def test_out_of_memory_names_the_settings_to_lower(corpus_txt):
    import resource

    def little_memory():  # as `ulimit -v 4000000` would
        resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))

    p = subprocess.run([sys.executable, str(HERE / 'charrnn.py'), '--data', corpus_txt,
                        '--sampler', 'random', '--hiddens', '40000', '--num-steps', '8',
                        '--batch-size', '4'], capture_output=True, text=True,
                       preexec_fn=little_memory, timeout=120)
    assert p.returncode == 1 and p.stderr.count('\n') == 1, p.stderr
    assert p.stderr.startswith('charrnn: error: MXNetError:') and '--hiddens' in p.stderr


def test_ctrl_c_anywhere_is_one_line_and_exit_130(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / 'm.npz')
    for args, wait in [(['--load', str(ckpt), '--generate', '--pred-len', '2000000',
                         '--prefixes', '分'], 6), (['--help'], 1)]:  # writing; importing MXNet
        p = subprocess.Popen([sys.executable, str(HERE / 'charrnn.py'), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(wait)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 130 and err.strip() == 'charrnn: interrupted', err


def test_a_second_ctrl_c_ends_the_continuations_after_the_first(corpus_txt, tmp_path):
    p = subprocess.Popen([sys.executable, str(HERE / 'charrnn.py'), '--data', corpus_txt,
                          '--save', str(tmp_path / 'm.npz'), '--sampler', 'random',
                          '--epochs', '100000', '--pred-period', '100000', '--pred-len',
                          '300000', *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    while 'sampling' not in p.stdout.readline():
        pass
    time.sleep(1)
    p.send_signal(signal.SIGINT)  # the model is saved, then 300,000 characters are written...
    while 'saved to' not in p.stdout.readline():
        pass
    time.sleep(1)
    started = time.time()
    p.send_signal(signal.SIGINT)  # ... which this one cuts short
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and time.time() - started < 10
    assert err.strip().endswith('charrnn: interrupted') and 'Traceback' not in err


@pytest.mark.parametrize('config, message', [
    ({'cell': 'rnn', 'hiddens': 16}, "'activation'"),
    ({'cell': 'rnn', 'hiddens': 12, 'activation': 'relu'}, 'do not fit a rnn of 12 hidden units'),
    ({'cell': 'cnn', 'hiddens': 16}, "'cnn'")])
def test_a_checkpoint_that_cannot_be_used_is_refused_at_load(tmp_path, config, message):
    path = tmp_path / 'm.npz'
    idx_to_char, _ = tiny_vocab()
    d2l.save_checkpoint(str(path), d2l.get_params(len(idx_to_char), 16, CPU), idx_to_char, config)
    with pytest.raises(ValueError, match=message):
        d2l.load_checkpoint(str(path), CPU)
    code, _, err = cli('--load', str(path), '--generate')
    assert code == 1 and message in err and err.count('\n') == 1


def test_on_report_gets_parameters_it_can_keep():
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    kept = {}

    def keep_first(epoch, params, history):
        kept.setdefault('params', params)
        kept.setdefault('values', [p.asnumpy().copy() for p in params])

    params = d2l.train_and_predict_rnn(d2l.rnn, d2l.get_params, d2l.init_rnn_state, 8, V, CPU,
                                       corpus, idx_to_char, char_to_idx, True, 4, 8, 1, 1, 4, 1,
                                       5, [], on_report=keep_first)
    assert all(np.array_equal(p.asnumpy(), v) for p, v in zip(kept['params'], kept['values']))
    assert not np.array_equal(params[0].asnumpy(), kept['values'][0])  # training went on


def test_a_report_period_of_0_is_refused_before_the_first_epoch():
    idx_to_char, char_to_idx = tiny_vocab()
    corpus = [char_to_idx[c] for c in TEXT]
    started = time.time()
    with pytest.raises(ValueError, match='pred_period'):
        d2l.train_and_predict_rnn(d2l.rnn, d2l.get_params, d2l.init_rnn_state, 8,
                                  len(idx_to_char), CPU, corpus, idx_to_char, char_to_idx, True,
                                  10 ** 6, 8, 1, 1, 4, 0, 5, [])
    assert time.time() - started < 1


def test_messages_name_the_users_own_paths(tmp_path):
    code, _, err = cli('--load', str(tmp_path / 'missing.npz'), '--generate')
    assert code == 1 and err == 'charrnn: error: %s: no such file\n' % (tmp_path / 'missing.npz')
    code, _, err = cli('--save', str(tmp_path / 'nodir' / 'm.npz'), '--sampler', 'random')
    assert code == 1 and 'cannot write %s (' % (tmp_path / 'nodir' / 'm.npz') in err
    assert '.tmp' not in err
    code, _, err = cli('--plot', str(tmp_path / 'out'), '--sampler', 'random')
    assert code == 2 and '.png, .svg or .pdf' in err


def test_the_status_line_is_whole_on_a_pty_of_0_columns_and_erased_by_ctrl_c(corpus_txt):
    import pty

    master, slave = pty.openpty()  # a new pseudo-terminal reports 0 columns
    p = subprocess.Popen([sys.executable, str(HERE / 'charrnn.py'), '--data', corpus_txt,
                          '--sampler', 'random', '--epochs', '100000', '--pred-period', '100000',
                          *TINY], stdout=subprocess.PIPE, stderr=slave, cwd=HERE)
    os.close(slave)
    err = b''
    while err.count(b'random: epoch') < 3:
        err += os.read(master, 4096)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    statuses = [s for s in err.decode('utf-8').split('\r\x1b[K') if s.startswith('random')]
    assert all(s.split('ETA ')[1][-3] == ':' for s in statuses[:-1])  # ends h:mm:ss, uncut
    assert err.decode('utf-8').rstrip('\n').endswith('\r\x1b[K')  # erased before it stopped


def test_a_ctrl_c_that_a_destructor_swallowed_comes_again():
    """MXNet frees arrays in __del__, where Python can only print an exception: a Ctrl-C that
    landed there must not be lost (it was, once in a few runs of the test above)."""
    class Unraisable:
        exc_type = KeyboardInterrupt

    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            d2l.reraise_ctrl_c(Unraisable)
            time.sleep(10)
    finally:
        signal.signal(signal.SIGINT, handler)


def test_an_array_that_ctrl_c_cut_short_is_freed_without_a_word():
    """A Ctrl-C inside NDArray.__init__ leaves an array without a handle, whose __del__ fails
    (CI on 3.8 printed it after 'charrnn: interrupted'): freed at once, under the hook, quietly."""
    script = textwrap.dedent('''
        import sys, charrnn, mxnet
        def run(args):
            half_made = mxnet.nd.NDArray.__new__(mxnet.nd.NDArray)
            raise KeyboardInterrupt
        charrnn.run = run
        sys.unraisablehook = charrnn.reraise_ctrl_c  # as the script sets it
        charrnn.main(%r)
    ''' % TINY)
    p = subprocess.run([sys.executable, '-W', 'ignore', '-c', script], cwd=HERE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert (p.returncode, p.stderr.strip()) == (130, 'charrnn: interrupted')


def test_allocations_that_failed_in_the_engine_are_not_a_traceback_at_exit():
    """Out of memory, MXNet's engine may hold more failed operations than the one raised: at exit
    it printed them in a traceback (CI, Python 3.12). main collects them before it ends."""
    script = textwrap.dedent('''
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))
        import charrnn, mxnet
        def run(args):
            failing = [mxnet.nd.zeros((40000, 40000)) for _ in range(2)]  # 6.4 GB each
            raise MemoryError('too large')
        charrnn.run = run
        charrnn.main(%r)
    ''' % TINY)
    p = subprocess.run([sys.executable, '-W', 'ignore', '-c', script], cwd=HERE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert (p.returncode, p.stderr) == (1, 'charrnn: error: too large\n')


# ---------------------------------------------------------------- in a notebook
def test_the_chapter_notebook_runs_in_a_real_kernel_with_its_status_line_and_live_picture():
    """docs/rnn-scratch.ipynb from a clean kernel (nbclient, ipykernel): no error; the status
    line rewritten with '\\r' in the cell's stream; the picture a PNG display redrawn in place."""
    import nbformat
    from nbclient import NotebookClient

    messages = []

    class Recorder(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            messages.append((msg['msg_type'], msg['content']))
            return super().process_message(msg, cell, cell_index)

    notebook = nbformat.read(HERE / 'docs' / 'rnn-scratch.ipynb', as_version=4)
    Recorder(notebook, timeout=600, kernel_name='python3',
             resources={'metadata': {'path': str(HERE / 'docs')}}).execute()
    outputs = [o for cell in notebook.cells for o in cell.get('outputs', [])]
    assert outputs and not [o for o in outputs if o.output_type == 'error']
    streams = [c['text'] for kind, c in messages if kind == 'stream' and c['name'] == 'stdout']
    statuses = [s for s in streams if s.startswith('\rrandom: epoch')]
    assert len(statuses) > 20 and all('\x1b' not in s for s in streams)  # no terminal codes
    redrawn = [c for kind, c in messages if kind == 'update_display_data']
    assert len(redrawn) >= 2 and all(c['data']['image/png'] for c in redrawn)
    assert [o for o in outputs if 'image/png' in o.get('data', {})]  # the last picture kept
    vocab_size = len(set(d2l.read_text()))
    last = re.findall(r'epoch \d+, perplexity ([\d.]+)', ''.join(streams))[-1]
    assert float(last) < vocab_size


def test_outside_a_notebook_live_plot_says_what_to_use_instead(capsys):
    assert d2l.live_plot(123.4) is None
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--plot PATH' in err and 'notebook' in err
