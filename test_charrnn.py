"""Tests for charrnn: small corpora made here, a few epochs each; the real corpus where named."""

import contextlib
import ctypes
import functools
import hashlib
import importlib.util
import itertools
import json
import math
import os
import pathlib
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
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


def text_of(path, num_chars=10000):
    """The text that load_data_jay_lyrics reads from path, as characters."""
    corpus, _, idx_to_char, _ = d2l.load_data_jay_lyrics(path, num_chars)
    return ''.join(idx_to_char[i] for i in corpus)


def tiny_vocab(text=TEXT):
    idx_to_char = sorted(set(text))
    return idx_to_char, {c: i for i, c in enumerate(idx_to_char)}


def cli(*args, **kwargs):
    """Run charrnn.py in a new process; (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, str(HERE / 'charrnn.py'), *args], capture_output=True,
                       text=True, timeout=120, cwd=HERE, **kwargs)
    return p.returncode, p.stdout, p.stderr


def ctrl_c_works():
    """In the new process: Ctrl-C as a terminal gives it (a job in the background ignores it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args, preexec_fn=ctrl_c_works, **kwargs):
    """charrnn.py running in a new process, its output piped."""
    return subprocess.Popen([sys.executable, str(HERE / 'charrnn.py'), *args], cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec_fn, **kwargs)


def read_until(stream, sign):
    """The lines of stream up to and with the first that holds sign: what a signal waits for."""
    lines = []
    for line in stream:
        lines.append(line)
        if sign in line:
            return lines
    raise AssertionError('%r never came: %s' % (sign, ''.join(lines)[-2000:]))


def interrupt(p, sig=signal.SIGINT):
    """Send sig until p ends, then (exit code, the rest of stdout, stderr's own lines). MXNet
    frees arrays in __del__, where Python prints a signal that lands there and goes on
    ('Exception ignored in', README): a test sends it again, as a person would."""
    for _ in range(5):
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        p.kill()
        raise AssertionError('%s did not end the run' % sig)
    return p.returncode, out, re.sub(DESTRUCTOR, '', err)


# What Python prints when a signal lands in MXNet's NDArray.__del__: its traceback, ending in
# that KeyboardInterrupt (an AttributeError for an array the signal cut short), nothing else.
DESTRUCTOR = (r'(?m)^Exception ignored in: <function NDArray(Base)?\.__del__ at \w+>\n'
              r'Traceback \(most recent call last\):\n((  .*)?\n)+'
              r'(KeyboardInterrupt|AttributeError).*\n')


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
    get_params, init_state, fn = cell_fns(cell)
    params = get_params(30, 16, CPU)
    assert len(params) == n_params
    assert params[0].shape == (30, 16) and params[1].shape == (16, 16) and params[2].shape == (16,)
    assert params[-2].shape == (16, 30) and params[-1].shape == (30,)
    assert all(p.grad is not None for p in params) and params[2].sum().asscalar() == 0
    state = init_state(3, 16, CPU)
    outputs, new_state = fn(d2l.to_onehot(nd.array([[1, 2, 3, 4]] * 3), 30), state, params)
    assert len(outputs) == 4 and all(o.shape == (3, 30) for o in outputs)
    assert len(new_state) == n_state and all(s.shape == (3, 16) for s in new_state)


def test_the_lstm_state_is_two_arrays():
    H, C = d2l.init_lstm_state(2, 3, CPU)
    H[:] = 1
    assert H is not C and C.sum().asscalar() == 0


def test_weights_are_drawn_from_n_0_0_01_and_biases_and_states_are_zero():
    mx.random.seed(0)
    params = d2l.get_lstm_params(300, 200, CPU)
    weights = np.concatenate([p.asnumpy().ravel() for p in params if p.ndim == 2])
    assert abs(weights.std() - 0.01) < 0.0002 and abs(weights.mean()) < 0.0002
    assert all(p.asnumpy().max() == p.asnumpy().min() == 0 for p in params if p.ndim == 1)
    assert all(s.asnumpy().max() == s.asnumpy().min() == 0 for s in d2l.init_lstm_state(2, 3, CPU))


# ---------------------------------------------------------------- clipping and optimisers
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
    assert np.allclose(ratio, ratio.flat[0])
    assert np.allclose(params[1].grad.asnumpy(), before[1] * ratio.flat[0])


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


def test_sgd_takes_any_number_of_arrays_in_the_groups_mxnet_takes():
    """multi_sgd_update takes at most 60 arrays (a 61st killed the process): 130 parameters of
    a reader's own model each take p - lr (g / batch_size + wd p), as numpy computes it."""
    rng = np.random.RandomState(0)
    values, grads = rng.randn(130, 3), rng.randn(130, 3)
    params = [nd.array(v) for v in values]
    for p, g in zip(params, grads):
        p.attach_grad()
        p.grad[:] = g
    d2l.sgd(params, 0.5, 4, wd=0.1)
    for p, v, g in zip(params, values, grads):
        assert np.allclose(p.asnumpy(), v - 0.5 * (g / 4 + 0.1 * v), rtol=1e-5, atol=1e-6)


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
    batches = [(X.asnumpy(), Y.asnumpy())
               for X, Y in d2l.data_iter_consecutive(corpus, batch_size, num_steps)]
    assert len(batches) == (100 // batch_size - 1) // num_steps == 4
    for (X0, Y0), (X1, _) in zip(batches, batches[1:]):
        assert np.array_equal(Y0, X0 + 1)
        assert np.array_equal(X1[:, 0], X0[:, -1] + 1)  # each row goes on where it stopped
    assert batches[0][0][:, 0].tolist() == [0, 25, 50, 75]


def test_random_sampler_at_an_exact_multiple_leaves_out_only_the_window_without_a_target():
    """100 characters, windows of 5: 20 windows, the last of which has no next character to
    predict for its last step, so 19; in one batch, every one of them once, in shuffled order."""
    corpus = list(range(100))
    random.seed(0)
    (X, Y), = d2l.data_iter_random(corpus, 19, 5)
    starts = X.asnumpy()[:, 0].astype(int).tolist()
    assert sorted(starts) == list(range(0, 95, 5)) and starts != sorted(starts)
    assert np.array_equal(Y.asnumpy(), X.asnumpy() + 1) and Y.asnumpy().max() == 95


def test_random_sampler_order_follows_the_seed():
    def order(seed):
        random.seed(seed)
        return [X.asnumpy()[:, 0].tolist() for X, _ in d2l.data_iter_random(range(200), 4, 5)]

    assert order(1) == order(1) and order(1) != order(2)
    assert sorted(sum(order(1), [])) != sum(order(1), [])  # not in the text's order


def books_data_iter_random(corpus_indices, batch_size, num_steps):
    """d2l-zh v1's data_iter_random (d2lzh), transcribed in plain Python: lists for NDArrays."""
    num_examples = (len(corpus_indices) - 1) // num_steps
    epoch_size = num_examples // batch_size
    example_indices = list(range(num_examples))
    random.shuffle(example_indices)

    def _data(pos):
        return corpus_indices[pos:pos + num_steps]

    for i in range(epoch_size):
        i = i * batch_size
        batch_indices = example_indices[i:i + batch_size]
        yield ([_data(j * num_steps) for j in batch_indices],
               [_data(j * num_steps + 1) for j in batch_indices])


@pytest.mark.parametrize('seed, length, batch_size, num_steps', [
    (0, 100, 3, 5), (1, 1000, 32, 35), (2, 96, 19, 5), (3, 500, 1, 7), (4, 2000, 7, 2)])
def test_random_sampler_gives_the_books_batches_in_the_books_order_for_a_seed(
        seed, length, batch_size, num_steps):
    corpus = [(i * 37) % 101 for i in range(length)]  # values that are not positions
    random.seed(seed)
    ours = [(X.asnumpy().tolist(), Y.asnumpy().tolist())
            for X, Y in d2l.data_iter_random(corpus, batch_size, num_steps)]
    after = random.random()  # the same draws taken: the run goes on as the book's
    random.seed(seed)
    books = list(books_data_iter_random(corpus, batch_size, num_steps))
    assert ours == books and len(books) == (length - 1) // num_steps // batch_size
    assert after == random.random()


def test_consecutive_sampler_at_an_exact_multiple_stops_where_a_target_is_missing():
    """96 characters in 4 rows of 24, windows of 6: the 4th window of a row would need a 25th
    character as its last target, so 3 batches; the last reads columns 12 to 17, targets to 18."""
    batches = [(X.asnumpy(), Y.asnumpy())
               for X, Y in d2l.data_iter_consecutive(list(range(96)), 4, 6)]
    assert len(batches) == 3 and all(Y.shape == (4, 6) for _, Y in batches)
    X, Y = batches[-1]
    assert X[:, 0].tolist() == [12, 36, 60, 84] and Y[:, -1].tolist() == [18, 42, 66, 90]
    assert len(list(d2l.data_iter_consecutive(list(range(100)), 4, 6))) == 4  # rows of 25


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
    assert text_of(pathlib.Path(corpus_txt), None) == TEXT


def test_every_line_break_that_python_knows_is_a_space_and_0_characters_is_all(tmp_path):
    """Each character at which str.splitlines() splits (U+2028, U+0085, \\v, \\f, ...) is a
    space, \\r\\n one space; 0 characters means all of them, as --corpus-chars 0 does."""
    breaks = [chr(i) for i in range(0x110000) if len(('a%sb' % chr(i)).splitlines()) == 2]
    text = 'x'.join(breaks) + '\r\ny'
    (tmp_path / 'breaks.txt').write_text(text, encoding='utf-8')
    assert text_of(tmp_path / 'breaks.txt', 0) == 'x'.join(' ' * len(breaks)) + ' y'
    assert len(breaks) == 10  # \n \r \v \f \x1c \x1d \x1e \x85 \u2028 \u2029


def test_line_breaks_of_any_system_a_byte_order_mark_and_zips_by_any_case(tmp_path):
    texts = {'unix.zip': 'ab\ncd\n', 'windows.ZIP': 'ab\r\ncd\r\n', 'mac.zip': '\ufeffab\rcd\r'}
    for name, text in texts.items():
        with zipfile.ZipFile(tmp_path / name, 'w') as z:
            z.writestr('notes.csv', 'not the text')
            z.writestr('A.TXT', text.encode('utf-8'))
        assert text_of(tmp_path / name) == 'ab cd '


def broken_zip(path, how):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('a.txt', TEXT.encode('utf-8') * 20)
    data = bytearray(path.read_bytes())
    central = data.index(b'PK\x01\x02')
    if how == 'flipped':
        data[45:60] = bytes(b ^ 0xFF for b in data[45:60])
    elif how == 'encrypted':
        data[central + 8] |= 1
    elif how == 'truncated':  # a member longer than the file: EOFError, whose text is empty
        with zipfile.ZipFile(path, 'w') as z:
            z.writestr('a.txt', TEXT.encode('utf-8'))
        data = bytearray(path.read_bytes())
        struct.pack_into('<I', data, data.index(b'PK\x01\x02') + 20, 10 ** 6)
        struct.pack_into('<I', data, data.index(b'PK\x01\x02') + 24, 10 ** 6)
    else:  # Deflate64, which zipfile cannot read
        data[central + 10] = 9
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize('how, cause', [('flipped', 'Error -3 while decompressing'),
                                        ('encrypted', 'is encrypted'),
                                        ('deflate64', 'compression method is not supported'),
                                        ('truncated', '(EOFError|Overlapped entries)')])
def test_a_broken_zip_is_a_value_error_naming_the_file_and_the_cause(tmp_path, how, cause):
    """The cause in words, or an EOFError by its name: its text is empty (Python 3.13's zipfile
    sees the member run into the directory first: 'Overlapped entries')."""
    path = broken_zip(tmp_path / ('%s.zip' % how), how)
    with pytest.raises(ValueError, match=r"^'%s' is not a UTF-8 .txt, or a .zip holding one "
                       r"\(.*%s" % (re.escape(str(path)), cause)):
        text_of(path)


def test_an_empty_text_or_a_zip_without_a_txt_is_named_as_such(tmp_path):
    """Once reported as a prefix problem, or as 'list index out of range'."""
    (tmp_path / 'empty.txt').write_bytes(b'')
    (tmp_path / 'breaks.txt').write_text('\n\r\n \n', encoding='utf-8')
    with zipfile.ZipFile(tmp_path / 'empty.zip', 'w') as z:
        z.writestr('a.txt', b'')
    with zipfile.ZipFile(tmp_path / 'no-txt.zip', 'w') as z:
        z.writestr('notes.csv', TEXT.encode('utf-8'))
    for name in ['empty.txt', 'breaks.txt', 'empty.zip']:
        with pytest.raises(ValueError, match="^'%s': no text in it, only spaces and line breaks "
                           "or nothing$" % (tmp_path / name)):
            d2l.load_data_jay_lyrics(tmp_path / name, None)
    (tmp_path / 'late.txt').write_text('\n\n' + TEXT, encoding='utf-8')
    with pytest.raises(ValueError, match="late.txt': no text in its first 2 characters"):
        d2l.load_data_jay_lyrics(tmp_path / 'late.txt', 2)
    with pytest.raises(ValueError, match="no-txt.zip' holds no .txt$"):
        text_of(tmp_path / 'no-txt.zip')
    code, out, err = cli('--data', str(tmp_path / 'breaks.txt'), *TINY)
    assert (code, out) == (1, '')
    assert err == ("charrnn: error: '%s': no text in its first 10000 characters, only spaces "
                   "and line breaks or nothing\n" % (tmp_path / 'breaks.txt'))


def test_a_zip_gives_its_first_txt(tmp_path):
    with zipfile.ZipFile(tmp_path / 'two.zip', 'w') as z:
        z.writestr('first.txt', '分开'.encode('utf-8'))
        z.writestr('second.txt', '不要'.encode('utf-8'))
    assert text_of(tmp_path / 'two.zip') == '分开'


def test_download_keeps_a_file_with_the_right_checksum_only(tmp_path):
    source = tmp_path / 'source.zip'
    with zipfile.ZipFile(source, 'w') as z:
        z.writestr('jaychou_lyrics.txt', TEXT.encode('utf-8'))
    sha1 = hashlib.sha1(source.read_bytes()).hexdigest()
    dest = str(tmp_path / 'kept.zip')
    assert d2l.download(source.as_uri(), dest, sha1) == dest
    assert text_of(dest, None) == TEXT
    with pytest.raises(ValueError, match='SHA-1'):
        d2l.download(source.as_uri(), str(tmp_path / 'bad.zip'), '0' * 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['kept.zip', 'source.zip']


def test_the_lyrics_are_downloaded_when_absent_and_offline_it_says_what_to_do(tmp_path):
    """DATA_PATH, where charrnn looks first, is absent: the book's URL is fetched, here from a
    local copy of the lyrics, and kept; offline, the error says to copy it or pass --data."""
    shared = HERE.parent / 'shared' / 'data' / 'jaychou_lyrics.txt.zip'
    lyrics = shared if shared.exists() else HERE / 'jaychou_lyrics.txt.zip'
    if not lyrics.exists():
        pytest.skip('no copy of the lyrics to serve')
    code = ('import charrnn, sys; charrnn.DATA_PATH = sys.argv[1]; '
            'url, path, sha1 = charrnn.download.__defaults__; '
            'charrnn.download.__defaults__ = (sys.argv[2], sys.argv[1], sha1); '
            'print(len(charrnn.load_data_jay_lyrics(None, None)[0]))')
    kept = tmp_path / 'lyrics.zip'
    p = subprocess.run([sys.executable, '-c', code, str(kept), lyrics.as_uri()], cwd=HERE,
                       capture_output=True, text=True)
    assert p.stdout.strip() == '63282', p.stderr
    assert kept.read_bytes() == lyrics.read_bytes()
    with pytest.raises(FileNotFoundError, match='--data'):
        d2l.download('http://127.0.0.1:9/jaychou_lyrics.txt.zip', str(tmp_path / 'x.zip'))


def test_a_download_cut_short_says_what_to_do_and_keeps_nothing(tmp_path, monkeypatch):
    import http.client
    import urllib.request

    class CutShort:
        def read(self):
            raise http.client.IncompleteRead(b'x' * 500, 99500)

    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout: CutShort())
    with pytest.raises(FileNotFoundError, match='IncompleteRead.*pass --data PATH'):
        d2l.download('https://example.org/lyrics.zip', str(tmp_path / 'x.zip'))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the cells against numpy
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_cell(cell, inputs, state, params, activation='tanh'):
    """The book's equations, step by step, in float64 numpy: what each cell must compute."""
    p = [a.asnumpy().astype(np.float64) for a in params]
    H, C = state[0].asnumpy().astype(np.float64), None
    if cell == 'lstm':
        C = state[1].asnumpy().astype(np.float64)
    outputs = []
    for X in [x.asnumpy().astype(np.float64) for x in inputs]:
        if cell == 'rnn':
            phi = np.tanh if activation == 'tanh' else (lambda z: np.maximum(z, 0))
            H = phi(X @ p[0] + H @ p[1] + p[2])
        elif cell == 'gru':
            Z = sigmoid(X @ p[0] + H @ p[1] + p[2])
            R = sigmoid(X @ p[3] + H @ p[4] + p[5])
            H = Z * H + (1 - Z) * np.tanh(X @ p[6] + (R * H) @ p[7] + p[8])
        else:
            I, F, O = [sigmoid(X @ p[3 * k] + H @ p[3 * k + 1] + p[3 * k + 2])  # noqa: E741
                       for k in range(3)]
            C = F * C + I * np.tanh(X @ p[9] + H @ p[10] + p[11])
            H = O * np.tanh(C)
        outputs.append(H @ p[-2] + p[-1])
    return outputs, H, C


@pytest.mark.parametrize('cell, activation', [('rnn', 'tanh'), ('rnn', 'relu'), ('gru', None),
                                              ('lstm', None)])
def test_each_cell_computes_the_books_equations(cell, activation):
    mx.random.seed(3)
    get_params, init_state, fn = cell_fns(cell)
    params = get_params(7, 5, CPU)
    for p in params:
        p[:] = nd.random.normal(scale=0.5, shape=p.shape)
    state = tuple(nd.random.normal(shape=s.shape) for s in init_state(3, 5, CPU))
    inputs = d2l.to_onehot(nd.array([[0, 3, 1, 6], [2, 2, 4, 1], [5, 0, 0, 3]]), 7)
    keywords = {'activation': activation} if activation else {}
    outputs, new_state = fn(inputs, state, params, **keywords)
    expected, H, C = numpy_cell(cell, inputs, state, params, activation)
    for o, e in zip(outputs, expected):
        assert np.allclose(o.asnumpy(), e, rtol=1e-4, atol=1e-5)
    assert np.allclose(new_state[0].asnumpy(), H, rtol=1e-4, atol=1e-5)
    if cell == 'lstm':
        assert np.allclose(new_state[1].asnumpy(), C, rtol=1e-4, atol=1e-5)


def book_rnn(inputs, state, params):
    """The chapter's RNN as printed (tanh), one small product per step."""
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
    X = nd.random.randint(0, V, (5, 7)).astype('float32')
    Y = nd.random.randint(0, V, (5, 7)).astype('float32')
    book_loss = gloss.SoftmaxCrossEntropyLoss()
    results = []
    for cell, loss_fn in [
            (lambda i, s, p: d2l.rnn(i, s, p, 'tanh'), d2l.sequence_loss),
            (book_rnn, lambda o, y: book_loss(nd.concat(*o, dim=0), y.T.reshape((-1,))).mean())]:
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
    get_params, init_state, fn = cell_fns(cell)
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


def test_dropout_keeps_the_expectation_and_drops_the_share_asked():
    X = nd.ones((1000, 1000))
    Y = d2l.dropout(X, 0.3).asnumpy()
    assert abs((Y == 0).mean() - 0.3) < 0.005 and abs(Y.mean() - 1) < 0.01
    assert np.allclose(np.unique(Y), [0, 1 / 0.7])  # dropped, or scaled by 1 / (1 - p)
    assert d2l.dropout(X, 0).asnumpy().min() == 1 and d2l.dropout(X, 1).asnumpy().max() == 0


@pytest.mark.parametrize('cell', ['rnn', 'gru', 'lstm'])
def test_dropout_acts_while_training_only(cell):
    """Under autograd.record() the outputs change; outside it (held-out perplexity, prediction)
    the same parameters give exactly what they give with no dropout."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    get_params, init_state, fn = cell_fns(cell)
    dropped = lambda *args: fn(*args, drop_probs=(0.5, 0.5))  # noqa: E731
    mx.random.seed(4)
    params = get_params(V, 8, CPU)
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


@pytest.mark.parametrize('cell', ['rnn', 'gru', 'lstm'])
def test_dropout_falls_on_the_inputs_and_on_the_states_that_feed_the_output(cell):
    """drop_probs=(1, 0) drops every input: the cell reads zeros; (0, 1) drops every state on its
    way to the output layer: each output is b_q."""
    get_params, init_state, fn = cell_fns(cell)
    mx.random.seed(8)
    params = get_params(7, 5, CPU)
    for p in params:
        p[:] = nd.random.normal(scale=0.5, shape=p.shape)
    inputs = d2l.to_onehot(nd.array([[0, 3, 1, 6], [2, 2, 4, 1]]), 7)
    with autograd.record():
        no_inputs, _ = fn(inputs, init_state(2, 5, CPU), params, drop_probs=(1, 0))
        no_states, _ = fn(inputs, init_state(2, 5, CPU), params, drop_probs=(0, 1))
    zeros, _ = fn([x * 0 for x in inputs], init_state(2, 5, CPU), params)
    assert all(np.allclose(a.asnumpy(), b.asnumpy()) for a, b in zip(no_inputs, zeros))
    b_q = np.tile(params[-1].asnumpy(), (2, 1))
    assert all(np.allclose(o.asnumpy(), b_q) for o in no_states)
    assert not np.allclose(zeros[-1].asnumpy(), b_q)


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


def random_rnn(V, hiddens=16, scale=0.5):
    """rnn parameters large enough that every step's choice depends on the state."""
    mx.random.seed(9)
    params = d2l.get_params(V, hiddens, CPU)
    for p in params:
        p[:] = nd.random.normal(scale=scale, shape=p.shape)
    return params


def numpy_rnn_steps(params, indices, H=None):
    """The notebook's ReLU rnn in float64 numpy, one character at a time: (outputs, H)."""
    W_xh, W_hh, b_h, W_hq, b_q = [p.asnumpy().astype(np.float64) for p in params]
    H = np.zeros(W_hh.shape[0]) if H is None else H
    outputs = []
    for i in indices:
        H = np.maximum(W_xh[i] + H @ W_hh + b_h, 0)  # a one-hot row times W_xh: its row of W_xh
        outputs.append(H @ W_hq + b_q)
    return outputs, H


def test_prediction_after_a_prefix_of_several_characters_is_the_notebooks_loop():
    """The prefix read from a zero state, then each character the argmax of the output after
    the last one read, fed back with the state carried."""
    idx_to_char, char_to_idx = tiny_vocab()
    V = len(idx_to_char)
    params = random_rnn(V)
    for prefix in ['不分开', '我想要你', '分']:
        outputs, H = numpy_rnn_steps(params, [char_to_idx[c] for c in prefix])
        expected = prefix
        for _ in range(20):
            expected += idx_to_char[int(np.argmax(outputs[-1]))]
            outputs, H = numpy_rnn_steps(params, [char_to_idx[expected[-1]]], H)
        assert d2l.predict_rnn(prefix, 20, d2l.rnn, params, d2l.init_rnn_state, 16, V, CPU,
                               idx_to_char, char_to_idx) == expected


def test_sampling_draws_from_the_softmax_of_the_last_output_over_t(monkeypatch):
    """Each draw's probabilities are softmax(O / T) of the output after the last character."""
    idx_to_char, char_to_idx = tiny_vocab()
    V = len(idx_to_char)
    params = random_rnn(V)
    asked = []

    def likeliest(probs):  # a stand-in for the draw: records what it was given
        asked.append(probs.asnumpy()[0].astype(np.float64))
        return probs.argmax(axis=1)

    monkeypatch.setattr(d2l.nd, 'sample_multinomial', likeliest)
    written = d2l.predict_rnn('我想要', 6, d2l.rnn, params, d2l.init_rnn_state, 16, V, CPU,
                              idx_to_char, char_to_idx, temperature=0.7)
    outputs, _ = numpy_rnn_steps(params, [char_to_idx[c] for c in written])
    for probs, O in zip(asked, outputs[2:]):
        expected = np.exp(O / 0.7 - (O / 0.7).max())
        assert np.allclose(probs, expected / expected.sum(), rtol=1e-4, atol=1e-6)
    assert len(asked) == 6


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
    outputs, _ = fn(d2l.to_onehot(nd.array([[char_to_idx['我']]]), len(idx_to_char)),
                    init_state(1, 32, CPU), params)
    assert greedy[1] == idx_to_char[int(outputs[-1].argmax(axis=1).asscalar())]
    mx.random.seed(7)
    hot = d2l.predict_rnn('我', 60, *args, temperature=100)
    assert len(set(hot[1:])) > len(idx_to_char) // 2  # nearly uniform: most characters appear
    mx.random.seed(7)
    assert d2l.predict_rnn('我', 60, *args, temperature=100) == hot


def test_a_tiny_temperature_draws_the_likeliest(model):
    fn, params, init_state, idx_to_char, char_to_idx = model
    args = (fn, params, init_state, 32, len(idx_to_char), CPU, idx_to_char, char_to_idx)
    greedy = d2l.predict_rnn('分开', 20, *args)
    for temperature in [1e-39, 1e-300]:  # O / T overflowed float32: NaN, then index 0 drawn
        assert d2l.predict_rnn('分开', 20, *args, temperature=temperature) == greedy


def test_the_longest_copy_is_found_whatever_its_place():
    text = 'the cat sat on the mat'
    assert d2l.longest_copy('a cat sat down', text) == ' cat sat '
    assert d2l.longest_copy('xyz', text) == '' and d2l.longest_copy('mat', text) == 'mat'
    assert d2l.longest_copy('on the matron', text) == 'on the mat'
    assert d2l.longest_copy('', text) == '' and d2l.longest_copy('tt mat', text) == ' mat'
    chorus = '我' * 300 + '分开'  # a character that fills the text is matched too (no autojunk)
    assert d2l.longest_copy('你我我我我分开', chorus) == '我我我我分开'
    assert d2l.longest_copy('你我我我我', chorus) == '我我我我'


def test_copies_count_the_characters_of_a_stretch_spaces_aside(capsys):
    """[copied n/m]: a continuation of spaces copies nothing, though the lyrics hold runs of
    spaces (a review saw 13 of 50 on the recipe's first epoch); a space inside a stretch found
    in the text does not break it."""
    idx_to_char, char_to_idx = tiny_vocab()
    V = len(idx_to_char)

    def writes(chars):  # a cell that writes chars, one after the other, whatever it reads
        count = [0]

        def cell(inputs, state, params):
            if len(inputs) > 1 and inputs[0].shape[0] == 1:  # a prefix: a new continuation
                count[0] = 0
            target = nd.one_hot(nd.array([char_to_idx[chars[count[0] % len(chars)]]]), V) * 100
            count[0] += 1
            return [nd.dot(nd.dot(x, params[0]), params[3]) * 0 + target for x in inputs], state
        return cell

    corpus = [char_to_idx[c] for c in TEXT]
    params = d2l.get_params(V, 4, CPU)
    for chars, shown, copied in [(' ', '分开(12× space or line break)', 0),
                                 ('我想要你 我不想 我不要', '分开我想要你 我不想 我不要', 10)]:
        d2l.train_and_predict_rnn(writes(chars), lambda: params, d2l.init_rnn_state, 4, V, CPU,
                                  corpus, idx_to_char, char_to_idx, True, 1, 8, 0, 1, 4, 1, 12,
                                  ['分开'])
        line = [x for x in capsys.readouterr().out.splitlines() if x.startswith(' - ')][0]
        assert line == ' - %s  [copied %d/12]' % (shown, copied)


# ---------------------------------------------------------------- training
def test_training_lowers_perplexity_well_below_the_vocabulary_size(capsys):
    fn, params, init_state, idx_to_char, char_to_idx = trained_tiny_model(epochs=40)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('epoch')]
    assert lines[-1].startswith('epoch 40/40, perplexity ')
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

        params = [_one((vocab_size, num_hiddens)), _one((num_hiddens, num_hiddens)),
                  nd.zeros(num_hiddens, ctx=ctx), _one((num_hiddens, vocab_size)),
                  nd.zeros(vocab_size, ctx=ctx)]
        for param in params:
            param.attach_grad()
        return params

    seen = []

    def spy_rnn(inputs, state, params):
        outputs, new_state = book_rnn(inputs, state, params)
        if autograd.is_recording():  # a training step, not a prediction or the last check
            assert len(inputs) == 6 and inputs[0].shape == (4, vocab_size)
            seen.append((state[0], new_state[0]))
        return outputs, new_state

    d2l.train_and_predict_rnn(spy_rnn, get_params, d2l.init_rnn_state, num_hiddens, vocab_size,
                              ctx, corpus_indices, idx_to_char, char_to_idx, False, 2, 6, 1e2,
                              1e-2, 4, 2, 5, ['分开'])
    assert '- 分开' in capsys.readouterr().out
    per_epoch = len(list(d2l.data_iter_consecutive(corpus_indices, 4, 6)))
    assert len(seen) == 2 * per_epoch
    for batches in [seen[:per_epoch], seen[per_epoch:]]:  # each epoch starts from zero
        assert not batches[0][0].asnumpy().any()
        for (_, out_prev), (state_in, _) in zip(batches, batches[1:]):
            assert state_in is not out_prev  # a detached copy, not the previous graph's output
            assert np.array_equal(state_in.asnumpy(), out_prev.asnumpy())  # the same values


@pytest.mark.parametrize('cell', ['rnn', 'gru', 'lstm'])
def test_the_trainer_takes_charrnns_own_get_params(cell, capsys):
    get_params, init_state, fn = cell_fns(cell)
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    params = d2l.train_and_predict_rnn(fn, get_params, init_state, 8, V, CPU, corpus,
                                       idx_to_char, char_to_idx, False, 1, 8, 1.0, 1.0, 4, 1, 5,
                                       ['分开'])
    assert len(params) == len(get_params(V, 8, CPU)) and params[0].shape == (V, 8)
    assert '- 分开' in capsys.readouterr().out


def test_history_reports_and_held_out_perplexity_come_at_each_report_and_the_end():
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    kept = {}

    def keep_first(epoch, params, history):
        kept.setdefault('params', params)
        kept.setdefault('values', [p.asnumpy().copy() for p in params])

    history = {}
    params = d2l.train_and_predict_rnn(
        d2l.rnn, d2l.get_params, d2l.init_rnn_state, 8, V, CPU, corpus, idx_to_char,
        char_to_idx, True, 5, 8, 1.0, 1.0, 4, 2, 5, [], val_indices=np.array(corpus[:40]),
        history=history, on_report=keep_first)
    assert len(history['train']) == 5 and [epoch for epoch, _ in history['val']] == [2, 4, 5]
    assert all(p > 1 for p in history['train']) and all(p > 1 for _, p in history['val'])
    assert all(np.array_equal(p.asnumpy(), v) for p, v in zip(kept['params'], kept['values']))
    assert not np.array_equal(params[0].asnumpy(), kept['values'][0])  # training went on


def test_training_with_adam_lowers_the_loss():
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
    assert adam_state[1]['t'] == 20 * len(list(d2l.data_iter_consecutive(corpus, 4, 8))) + 1


def one_batch_by_hand(params, corpus, batch_size, theta):
    """The clipped gradient of the notebook's loss (gluon's) on the one consecutive batch of
    corpus, by the book's tanh rnn: (the loss, each gradient in float64)."""
    rows = np.array(corpus).reshape(batch_size, -1)
    X, Y = nd.array(rows[:, :-1]), nd.array(rows[:, 1:])
    copies = [p.copy() for p in params]
    for c in copies:
        c.attach_grad()
    with autograd.record():
        outputs, _ = book_rnn(d2l.to_onehot(X, params[0].shape[0]),
                              d2l.init_rnn_state(batch_size, params[1].shape[0], CPU), copies)
        loss = gloss.SoftmaxCrossEntropyLoss()(nd.concat(*outputs, dim=0),
                                               Y.T.reshape((-1,))).mean()
    loss.backward()
    grads = [c.grad.asnumpy().astype(np.float64) for c in copies]
    norm = math.sqrt(sum((g ** 2).sum() for g in grads))
    return loss.asscalar(), [g * min(theta / norm, 1) for g in grads], norm


@pytest.mark.parametrize('optimizer', ['sgd', 'adam'])
@pytest.mark.parametrize('theta, wd', [(1e3, 0), (0.05, 0), (0.05, 0.1)])
def test_one_batch_of_training_is_one_clipped_step_as_by_hand(optimizer, theta, wd):
    """A text of one consecutive minibatch and one epoch: the trainer's parameters are the
    first ones less lr × (the clipped gradient of the mean loss + wd × the parameter) for SGD,
    lr × (ĝ / (√ĝ² + 1e-6) + wd × the parameter) for Adam's first step; its perplexity is exp
    of that loss."""
    idx_to_char, char_to_idx = tiny_vocab()
    V, batch_size, num_steps, lr = len(idx_to_char), 3, 5, 0.5
    corpus = [char_to_idx[c] for c in TEXT[:batch_size * (num_steps + 1)]]
    params = random_rnn(V, hiddens=8)
    before = [p.asnumpy().astype(np.float64) for p in params]
    loss, grads, norm = one_batch_by_hand(params, corpus, batch_size, theta)
    assert (norm > theta) == (theta < 1)  # clipped, or not, as the case says
    if optimizer == 'sgd':
        expected = [b - lr * (g + wd * b) for b, g in zip(before, grads)]
        adam_state = None
    else:
        expected = [b - lr * (g / (np.abs(g) + 1e-6) + wd * b) for b, g in zip(before, grads)]
        adam_state = (d2l.init_adam_states(params), {'t': 1})
    history = {}
    tanh_rnn = lambda inputs, state, params: d2l.rnn(inputs, state, params, 'tanh')  # noqa: E731
    d2l.train_and_predict_rnn(tanh_rnn, lambda: params, d2l.init_rnn_state, 8, V, CPU, corpus,
                              idx_to_char, char_to_idx, False, 1, num_steps, lr, theta,
                              batch_size, 1, 0, [], history=history, weight_decay=wd,
                              adam_state=adam_state)
    for p, e in zip(params, expected):
        assert np.allclose(p.asnumpy(), e, rtol=1e-4, atol=1e-6)
    assert history['train'] == [pytest.approx(math.exp(loss), rel=1e-5)]
    if adam_state:
        assert adam_state[1] == {'t': 2, 'lr': lr, 'wd': wd}


def test_random_sampling_starts_each_minibatch_from_a_zero_state():
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    states = []

    def spy_rnn(inputs, state, params):
        if autograd.is_recording():  # a training step
            states.append(state[0].asnumpy())
        return d2l.rnn(inputs, state, params)

    d2l.train_and_predict_rnn(spy_rnn, d2l.get_params, d2l.init_rnn_state, 8, V, CPU, corpus,
                              idx_to_char, char_to_idx, True, 2, 6, 1, 1, 4, 2, 0, [])
    assert len(states) == 2 * ((len(corpus) - 1) // 6 // 4)
    assert all(not s.any() for s in states)


def fixed_cell(V, logit):
    """A cell whose every output gives character 0 the logit, the others 0 (b_q × 0 added: the
    loss has a gradient, all zero)."""
    def cell(inputs, state, params):
        outputs = [nd.one_hot(nd.zeros(x.shape[0]), V) * logit + 0 * params[-1] for x in inputs]
        return outputs, state
    return cell


def test_a_mean_loss_past_700_is_divergence_named_not_an_overflow():
    """exp(700) is near float's limit: a mean loss of 800 is a diverged run, said so."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT if c != idx_to_char[0]], len(idx_to_char)
    with pytest.raises(FloatingPointError, match='the loss became 800.* in epoch 1'):
        d2l.train_and_predict_rnn(fixed_cell(V, 800), d2l.get_params, d2l.init_rnn_state, 4, V,
                                  CPU, corpus, idx_to_char, char_to_idx, True, 2, 8, 1, 1, 4, 1,
                                  5, [])


def test_each_report_gives_that_epochs_perplexities_and_time_left(capsys, monkeypatch):
    """A clock that moves 10 s for each minibatch, one minibatch an epoch: at epoch k of 3 the
    report says 10.00 s/epoch and 10 (3 - k) s left; its perplexities are history's last."""
    idx_to_char, char_to_idx = tiny_vocab()
    V = len(idx_to_char)
    corpus = [char_to_idx[c] for c in TEXT[:4 * 8 + 1]]  # one random minibatch of 4 × 8
    clock = [0]

    def cell(inputs, state, params):
        if autograd.is_training():
            clock[0] += 10
        return d2l.rnn(inputs, state, params)

    monkeypatch.setattr(d2l.time, 'time', lambda: clock[0])
    history = {}
    d2l.train_and_predict_rnn(cell, d2l.get_params, d2l.init_rnn_state, 8, V, CPU, corpus,
                              idx_to_char, char_to_idx, True, 3, 8, 1, 1, 4, 1, 0, [],
                              val_indices=corpus[:17], history=history)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('epoch')]
    for k, line in enumerate(lines, 1):
        assert line == ('epoch %d/3, perplexity %.2f, 10.00 s/epoch, ETA 0:00:%02d, '
                        'val perplexity %.2f' % (k, history['train'][k - 1], 10 * (3 - k),
                                                 history['val'][k - 1][1]))
    assert len(lines) == 3 and len(set(history['train'])) == 3


def test_consecutive_sampling_needs_batch_size_times_num_steps_plus_one_each(capsys):
    """A row of num_steps + 1 characters holds one window and its targets: 4 × 9 = 36."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT[:36]], len(idx_to_char)
    args = (d2l.rnn, d2l.get_params, d2l.init_rnn_state, 4, V, CPU)
    with pytest.raises(ValueError, match='needs 36 characters, not 35$'):
        d2l.train_and_predict_rnn(*args, corpus[:35], idx_to_char, char_to_idx, False, 1, 8, 1,
                                  1, 4, 1, 0, [])
    history = {}
    d2l.train_and_predict_rnn(*args, corpus, idx_to_char, char_to_idx, False, 1, 8, 1, 1, 4, 1, 0,
                              [], history=history)
    assert len(history['train']) == 1


def test_too_little_text_for_a_minibatch_and_a_diverging_loss_are_errors_naming_the_cause():
    message = 'no minibatch: --batch-size 2 × --num-steps 156 needs 313 characters, not 156$'
    with pytest.raises(ValueError, match=message):
        trained_tiny_model(epochs=1, num_steps=len(TEXT), batch_size=2, hiddens=8)
    with pytest.raises(FloatingPointError, match='learning rate'):
        trained_tiny_model(epochs=3, lr=1e38, theta=1e38, batch_size=2, hiddens=8)


def test_a_run_that_diverges_on_its_last_step_is_an_error_naming_what_to_lower():
    """Each epoch's loss comes before each step: the last step's parameters are checked by the
    loss on its batch. One minibatch an epoch, SGD at 1e30: that loss is NaN."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    history = {}
    with pytest.raises(FloatingPointError, match=r'^the loss became nan in epoch 1: lower the '
                       r'learning rate \(1e\+30\), θ \(1e\+30\) or the weight decay \(0.5\)$'):
        d2l.train_and_predict_rnn(d2l.rnn, d2l.get_params, d2l.init_rnn_state, 8, V, CPU, corpus,
                                  idx_to_char, char_to_idx, True, 1, 8, 1e30, 1e30, 16, 1, 5, [],
                                  history=history, weight_decay=0.5)
    assert history['train'] == []
    code, out, err = cli('--corpus-chars', '1300', '--val-frac', '0.05', '--hiddens', '8',
                         '--epochs', '1', '--sampler', 'random', '--pred-len', '10',
                         '--optimizer', 'adam', '--lr', '1e38', '--temperature', '0.8',
                         '--seed', '1')
    assert code == 1 and 'val perplexity' not in out
    assert err.startswith('charrnn: error: the loss became nan in epoch 1') and err.count('\n') == 1


def test_the_last_steps_check_comes_at_the_last_epoch_and_takes_a_finite_loss_past_700_too():
    """A cell whose logit is 800 only for a call outside training with a minibatch's rows (the
    check of the last step's parameters): 2 epochs train, then the second epoch's check fails."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT if c != idx_to_char[0]], len(idx_to_char)

    def cell(inputs, state, params):
        checking = not autograd.is_recording() and inputs[0].shape[0] == 4
        return fixed_cell(V, 800 if checking else 0)(inputs, state, params)
    history = {}
    with pytest.raises(FloatingPointError, match='^the loss became 800 in epoch 2: '):
        d2l.train_and_predict_rnn(cell, d2l.get_params, d2l.init_rnn_state, 4, V, CPU, corpus,
                                  idx_to_char, char_to_idx, True, 2, 8, 1, 1, 4, 1, 5, [],
                                  history=history)
    assert len(history['train']) == 1


def test_a_held_out_text_without_a_window_is_refused_before_training():
    idx_to_char, char_to_idx = tiny_vocab()
    corpus = [char_to_idx[c] for c in TEXT]
    started = time.time()
    with pytest.raises(ValueError, match=r'held out \(--val-frac\): 8 characters, no window'):
        d2l.train_and_predict_rnn(d2l.rnn, d2l.get_params, d2l.init_rnn_state, 8,
                                  len(idx_to_char), CPU, corpus, idx_to_char, char_to_idx, True,
                                  10 ** 6, 8, 1, 1, 4, 1, 5, [], val_indices=corpus[:8])
    assert time.time() - started < 1


@pytest.mark.parametrize('length', [41, 43, 9])  # an exact multiple of 8 and one more; 1 window
def test_held_out_perplexity_carries_the_state_through_the_text_as_numpy_does(length):
    """exp of the mean cross-entropy of every target in the windows of 8 that fit, the state
    carried from window to window: the text read once, in order, in float64 numpy."""
    idx_to_char, char_to_idx = tiny_vocab()
    V = len(idx_to_char)
    params = random_rnn(V, scale=0.25)
    corpus = [char_to_idx[c] for c in TEXT[:length]]
    n = (length - 1) // 8 * 8
    outputs, _ = numpy_rnn_steps(params, corpus[:n])
    loss = [np.log(np.exp(o - o.max()).sum()) + o.max() - o[y]
            for o, y in zip(outputs, corpus[1:n + 1])]
    assert d2l.evaluate_perplexity(d2l.rnn, params, d2l.init_rnn_state, 16, V, CPU, corpus,
                                   8) == pytest.approx(math.exp(np.mean(loss)), rel=1e-5)
    assert 2 < np.mean(loss) < 20  # a loss that the carried state changes


def test_held_out_perplexity_of_a_text_without_a_window_is_a_value_error():
    """num_steps characters or fewer hold no window and its next character: once a traceback."""
    idx_to_char, char_to_idx = tiny_vocab()
    params = random_rnn(len(idx_to_char))
    for length in [0, 1, 8]:
        with pytest.raises(ValueError, match='^no window of 8 steps: %d characters$' % length):
            d2l.evaluate_perplexity(d2l.rnn, params, d2l.init_rnn_state, 16, len(idx_to_char),
                                    CPU, [char_to_idx['我']] * length, 8)


def test_a_held_out_loss_past_float_range_is_an_infinite_perplexity():
    """exp of a mean loss above 709 is past float range: 'math range error', once."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus, V = [char_to_idx[c] for c in TEXT], len(idx_to_char)
    params = d2l.get_params(V, 8, CPU)
    params[-1][:] = nd.array(np.where(np.arange(V) == char_to_idx['我'], 1e4, -1e4))
    assert d2l.evaluate_perplexity(d2l.rnn, params, d2l.init_rnn_state, 8, V, CPU, corpus,
                                   8) == math.inf
    params[-1][:] = math.nan  # a diverged model is not a large perplexity: NaN stays NaN
    assert math.isnan(d2l.evaluate_perplexity(d2l.rnn, params, d2l.init_rnn_state, 8, V, CPU,
                                              corpus, 8))


def test_a_run_of_10_to_the_15_epochs_gives_its_eta_in_hours():
    """The ETA overflowed datetime.timedelta past 10^9 days: --epochs 10^15 failed there."""
    idx_to_char, char_to_idx = tiny_vocab()
    corpus = [char_to_idx[c] for c in TEXT]

    class Stop(Exception):
        pass

    def stop(epoch, params, history):
        raise Stop

    with pytest.raises(Stop):
        d2l.train_and_predict_rnn(d2l.rnn, d2l.get_params, d2l.init_rnn_state, 8,
                                  len(idx_to_char), CPU, corpus, idx_to_char, char_to_idx, True,
                                  10 ** 15, 8, 1, 1, 4, 1, 5, [], on_report=stop)


# ---------------------------------------------------------------- device and platform
def test_try_gpu_falls_back_to_the_cpu_when_the_kernel_check_fails(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise mx.base.MXNetError('Traceback\n  at frame\nno kernel image is available')

    monkeypatch.setattr(mx.context, 'num_gpus', lambda: 1)
    monkeypatch.setattr(d2l.nd, 'ones', broken)
    assert d2l.try_gpu() == mx.cpu()
    err = capsys.readouterr().err
    assert err == 'charrnn: using the CPU (no kernel image is available)\n'


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
    code = PROBE + 'print(open("/proc/self/maps").read())'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(HERE)]))
    env.pop('MXNET_CUDNN_LIB_CHECKING', None)
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout.splitlines()[0])
    assert seen['seen']['MXNET_CUDNN_LIB_CHECKING'] == '0' and seen['unchanged']
    assert str(tmp_path / 'nvidia' / 'cudart' / 'lib' / 'libcudart.so.11.0') in p.stdout
    assert str(tmp_path / 'nvidia' / 'cudnn' / 'lib' / 'libcudnn.so.8') in p.stdout


# In a new process: the environment that MXNet's import reads, what OpenMP then uses, and what
# is left in os.environ and passed to a child process after `import charrnn`.
PROBE = textwrap.dedent('''
    import builtins, ctypes, json, os, subprocess
    real, seen = builtins.__import__, {}
    def spy(name, *args, **kwargs):
        if name == 'mxnet' and not seen:
            seen.update(os.environ)
        return real(name, *args, **kwargs)
    builtins.__import__ = spy
    before = dict(os.environ)
    import charrnn
    child = subprocess.run(['sh', '-c', 'env'], capture_output=True, text=True).stdout
    print(json.dumps({'omp': ctypes.CDLL('libgomp.so.1').omp_get_max_threads(),
                      'seen': seen, 'unchanged': dict(os.environ) == before,
                      'child': sorted(line.split('=')[0] for line in child.splitlines())}))
''')


def unset(*names):
    """os.environ without names: the settings that charrnn then makes its own."""
    return {k: v for k, v in os.environ.items() if k not in names}


def probe(**kwargs):
    p = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True, cwd=HERE,
                       **kwargs)
    assert p.returncode == 0 and p.stderr == '', p.stderr
    return json.loads(p.stdout)


def test_with_all_cpus_but_one_busy_mxnet_gets_one_thread_and_a_users_setting_wins():
    """The collapse (threads spinning for a core that another program holds) cannot come back:
    with a busy loop on every CPU but one, MXNet's OpenMP runs one thread, and so with one CPU
    (taskset). The count is set for MXNet's import alone: os.environ is as it was, and a child
    process inherits nothing of it."""
    env = unset('OMP_NUM_THREADS', 'MXNET_ENGINE_TYPE')
    busy = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
            for _ in range(max(1, len(os.sched_getaffinity(0)) - 1))]  # all CPUs but one
    try:
        time.sleep(0.5)
        loaded = probe(env=env)
        mine = probe(env=dict(env, OMP_NUM_THREADS='3'))
    finally:
        for b in busy:
            b.kill()
    assert loaded['omp'] == 1 and loaded['seen']['OMP_NUM_THREADS'] == '1'
    assert loaded['seen']['MXNET_ENGINE_TYPE'] == 'NaiveEngine'  # named on stderr: not shown
    assert loaded['unchanged'] and 'OMP_NUM_THREADS' not in loaded['child']
    assert 'MXNET_ENGINE_TYPE' not in loaded['child']
    assert mine['omp'] == 3 and mine['unchanged'] and 'OMP_NUM_THREADS' in mine['child']
    assert probe(env=env, preexec_fn=lambda: os.sched_setaffinity(0, {0}))['omp'] == 1  # taskset


IMPORT = textwrap.dedent('''
    import os, sys
    if sys.argv[1:]:  # a file that took the number of the stderr closed before it
        log = open(sys.argv[1], 'w')
    fds = sorted(os.listdir('/proc/self/fd'))
    import charrnn
    os.write(2, b'after\\n')
    assert sorted(os.listdir('/proc/self/fd')) == fds, (fds, os.listdir('/proc/self/fd'))
''')


def test_with_a_gpu_mxnet_keeps_its_threaded_engine_and_nothing_is_counted_again():
    """A GPU computes while Python queues the next operators: no synchronous engine there."""
    code = ('import numpy; numpy.bool = bool\n'  # as charrnn readies numpy 1.26 (Python 3.12)
            'import mxnet.context; mxnet.context.num_gpus = lambda: 1\n'  # before MXNet starts
            'import os; before = dict(os.environ)\n'
            'import charrnn; print(sorted(charrnn.env), os.environ == before)')
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=HERE,
                       env={k: v for k, v in os.environ.items() if not k.startswith(('OMP', 'MX'))})
    assert p.stdout == "['MXNET_MKLDNN_CACHE_NUM', 'OMP_NUM_THREADS'] True\n", p.stderr
    assert 'charrnn: using the CPU' in p.stderr and 'engine' not in p.stderr  # the default's


def test_after_the_import_stderr_is_as_it_was_and_no_file_is_left_open(tmp_path):
    """MXNet's synchronous engine names itself on stderr as it starts (hidden): then stderr,
    even a file that holds its number after 2>&-, writes as before, and no file is left open."""
    p = subprocess.run([sys.executable, '-c', IMPORT], capture_output=True, cwd=HERE)
    assert p.returncode == 0 and p.stderr == b'after\n', p.stderr
    log = tmp_path / 'log'
    p = subprocess.run([sys.executable, '-c', IMPORT, str(log)], stdout=subprocess.PIPE, cwd=HERE,
                       stderr=subprocess.DEVNULL, preexec_fn=lambda: os.close(2))
    assert p.returncode == 0 and log.read_bytes() == b'after\n', log.read_bytes()


def fake_machine(root, runnable, states='RS', smt='0', cpu_max=None, cfs=None):
    """/proc and /sys files as free_cores reads them: /proc/loadavg's runnable tasks, this
    process's threads in those states, the SMT switch, a cgroup v2 cpu.max or v1 (quota, period)."""
    (root / 'proc').mkdir(parents=True, exist_ok=True)
    (root / 'proc' / 'loadavg').write_text('4.10 3.20 1.50 %d/321 4242\n' % runnable)
    for i, state in enumerate(states):
        task = root / 'proc' / 'self' / 'task' / str(100 + i)
        task.mkdir(parents=True, exist_ok=True)
        (task / 'stat').write_text('%d (py) R (x) %s 1 2 3 4\n' % (100 + i, state))
    (root / 'smt').write_text(smt + '\n')
    (root / 'cgroup' / 'cpu').mkdir(parents=True, exist_ok=True)
    if cpu_max:
        (root / 'cgroup' / 'cpu.max').write_text(cpu_max + '\n')
    for name, value in zip(['quota', 'period'], cfs or []):
        (root / 'cgroup' / 'cpu' / ('cpu.cfs_%s_us' % name)).write_text('%d\n' % value)
    return {'proc': str(root / 'proc'), 'cgroup': str(root / 'cgroup'), 'smt': str(root / 'smt')}


@pytest.mark.parametrize('runnable, states, smt, cpu_max, cfs, threads', [
    (1, 'RS', '0', None, None, 8),  # only this thread runs, one core a CPU: all 8
    (3, 'RS', '0', None, None, 6),  # two tasks of other processes: 2 CPUs fewer
    (3, 'RRS', '0', None, None, 7),  # one is this process's own (an OpenMP thread spinning)
    (3, 'RRRRS', '0', None, None, 8),  # all of them are: none of another
    (3, 'RDS', '0', None, None, 6),  # in disk wait (D): not runnable, as /proc/loadavg counts
    (12, 'RS', '0', None, None, 1),  # more waiting than there are CPUs: at least one
    (1, 'RS', '1', None, None, 4),  # two CPUs a core (SMT): one a core
    (1, 'R', None, None, None, 4),  # no SMT switch: two a core, as MXNet assumes
    (1, 'RS', '0', 'max 100000', None, 8),  # a cgroup v2 with no quota
    (1, 'RS', '0', '250000 100000', None, 3),  # a quota of 2.5 CPUs: 3 threads (rounded up)
    (3, 'RS', '0', '500000 100000', None, 5),  # the quota, and less the others' tasks
    (1, 'RS', '0', None, (-1, 100000), 8),  # a cgroup v1 with no quota
    (1, 'RS', '0', None, (100000, 50000), 2),  # v1: 2 CPUs
    (1, 'RS', '0', None, (10000, 100000), 1),  # a tenth of one: one thread
])
def test_free_cores_counts_the_cpus_less_others_work_within_the_quota(
        tmp_path, monkeypatch, runnable, states, smt, cpu_max, cfs, threads):
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(8)))  # 8 CPUs
    paths = fake_machine(tmp_path, runnable, states, smt or '0', cpu_max, cfs)
    if smt is None:
        os.remove(paths['smt'])
    assert d2l.free_cores(**paths) == threads


@pytest.mark.parametrize('seen', [2, 3])
def test_free_cores_reads_the_load_again_if_a_thread_of_this_process_changed_state_meanwhile(
        tmp_path, monkeypatch, seen):
    """A thread of this process starts to run as /proc/loadavg is read, which counts it (3) or
    not yet (2): either way one of the two readings of the threads is off by one, so the load is
    read again, with the threads as they stand after."""
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(8)))  # 8 CPUs
    paths = fake_machine(tmp_path, seen, 'RS')  # this thread, and another process's task
    real, reads = pathlib.Path.read_text, []

    def read_text(path, *args, **kwargs):
        text = real(path, *args, **kwargs)
        if path.name == 'loadavg':
            reads.append(text.split()[3])
            fake_machine(tmp_path, 3, 'RR')  # the second thread of this process now runs too
        return text
    monkeypatch.setattr(pathlib.Path, 'read_text', read_text)
    assert d2l.free_cores(**paths) == 7  # 8 CPUs, less the other process's task
    assert reads == ['%d/321' % seen, '3/321', '3/321', '3/321']  # twice each time


def test_free_cores_takes_a_thread_that_ended_meanwhile_as_not_running(tmp_path, monkeypatch):
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(8)))  # 8 CPUs
    paths = fake_machine(tmp_path, 2, 'RR')  # this thread, and one that ends before it is read
    real = pathlib.Path.read_text

    def read_text(path, *args, **kwargs):
        if path.parent.name == '101':  # its /proc/self/task/101 is gone
            raise FileNotFoundError(path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(pathlib.Path, 'read_text', read_text)
    assert d2l.free_cores(**paths) == 7  # 8 CPUs, less the other runnable task: another's


def test_free_cores_takes_the_larger_of_two_loads_read_in_a_row(tmp_path, monkeypatch):
    """/proc/loadavg can miss a task for an instant (one moving between CPUs): seen in one of two
    readings, it counts, since a thread too many stalls them all and one too few costs a little."""
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(8)))  # 8 CPUs
    paths = fake_machine(tmp_path, 1, 'RS')  # only this thread, in the first reading
    real = pathlib.Path.read_text

    def read_text(path, *args, **kwargs):
        text = real(path, *args, **kwargs)
        if path.name == 'loadavg':
            fake_machine(tmp_path, 3 - int(text.split()[3][0]), 'RS')  # 1, 2, 1, 2, ...
        return text
    monkeypatch.setattr(pathlib.Path, 'read_text', read_text)
    assert d2l.free_cores(**paths) == 7  # 8 CPUs, less the task seen in the second reading


# The OpenMP count where the operators run: GOMP_parallel_start, the way into a team for MXNet,
# its oneDNN and OpenBLAS, reports the thread that starts one, omp_get_max_threads there and the
# size of the team it got (a oneDNN transpose kept the count it was made with, until made anew).
SPY = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int omp_get_max_threads(void);
int omp_get_num_threads(void);
void GOMP_parallel_start(void (*fn)(void *), void *data, unsigned num_threads) {
    void (*real)(void (*)(void *), void *, unsigned) = dlsym(RTLD_NEXT, "GOMP_parallel_start");
    int count = omp_get_max_threads();
    real(fn, data, num_threads);
    fprintf(stderr, "team %ld %d %d\n", (long)syscall(SYS_gettid), count, omp_get_num_threads());
}
'''
TRAIN = textwrap.dedent('''
    import json, os, sys, threading
    import charrnn as d2l
    from mxnet import nd
    os.write(2, b'main %d\\n' % threading.get_native_id())
    paths = json.loads(sys.argv[1])
    d2l.free_cores.__defaults__ = (paths['proc'], paths['cgroup'], paths['smt'])
    sampler = d2l.data_iter_random
    def data_iter(*args):  # the load changes before each minibatch: none, one other task, none
        for k, batch in enumerate(sampler(*args), 1):
            nd.waitall()  # the last minibatch's operators done
            runnable = 2 if k == 2 else 1  # 1: only this thread
            open(paths['proc'] + '/loadavg', 'w').write('1.0 1.0 1.0 %d/100 1\\n' % runnable)
            os.write(2, b'minibatch %d\\n' % k)
            yield batch
    d2l.data_iter_random = data_iter
    chars = sorted(set(sys.argv[2]))
    corpus = [chars.index(c) for c in sys.argv[2]] * 11  # 3 minibatches, in one epoch
    d2l.train_and_predict_rnn(
        d2l.rnn, d2l.get_params, d2l.init_rnn_state, 256, len(chars), d2l.mx.cpu(), corpus,
        chars, {c: i for i, c in enumerate(chars)}, True, 1, 8, 1.0, 1.0, 64, 1, 0, [])
''')


def teams(env, tmp_path):
    """The main thread, and each minibatch's OpenMP teams: (the thread that starts one,
    omp_get_max_threads there, its size), with the load as TRAIN changes it: no other task, then
    one, then none again."""
    spy = tmp_path / 'spy.so'
    (tmp_path / 'spy.c').write_text(SPY)
    subprocess.run(['gcc', '-shared', '-fPIC', '-o', str(spy), str(tmp_path / 'spy.c'), '-ldl',
                    '-lgomp'], check=True)
    paths = fake_machine(tmp_path, 1, states='R', cpu_max='200000 100000')  # 2 CPUs, at most
    p = subprocess.run([sys.executable, '-c', TRAIN, json.dumps(paths), TEXT], cwd=HERE, text=True,
                       capture_output=True, env=dict(env, LD_PRELOAD=str(spy)), timeout=300)
    assert p.returncode == 0, p.stderr
    batches = {}
    batch = batches.setdefault(0, set())  # before training
    for line in p.stderr.splitlines():
        if line.startswith('main'):
            main = int(line.split()[1])
        elif line.startswith('minibatch'):
            batch = batches.setdefault(int(line.split()[1]), set())
        else:
            batch.add(tuple(int(x) for x in line.split()[1:]))
    return main, [batches[i] for i in (1, 2, 3)]


OMP = ctypes.CDLL('libgomp.so.1')  # MXNet's OpenMP, for its count in this thread


@pytest.fixture
def counted(monkeypatch):
    """charrnn counts the free cores again as it trains, as when the count at import and the
    engine are its own; after the test, this thread's OpenMP count is as it was."""
    if 'MXNET_ENGINE_TYPE' not in d2l.env:  # yours, or a GPU's: operators run in other threads
        pytest.skip('MXNet runs its operators in threads of its own here')
    monkeypatch.setitem(d2l.env, 'OMP_NUM_THREADS', '2')
    before = OMP.omp_get_max_threads()
    yield before
    mx.base.check_call(mx.base._LIB.MXSetNumOMPThreads(before))


@pytest.mark.parametrize('cell', ['rnn', 'lstm'])
def test_the_chapters_cells_give_the_same_bits_whatever_the_thread_count(
        monkeypatch, counted, cell):
    """The count follows the load from one minibatch to the next, set in this thread, which
    runs the operators (the spy test), and the results do not: one thread or more, each product
    and sum of the chapter's cells adds in the same order."""
    get_params, init_state, rnn = d2l.CELLS[cell]
    corpus, char_to_idx, idx_to_char, V = d2l.load_data_jay_lyrics(num_chars=2300)  # 2 batches
    trained, callers, seen = [], set(), []
    for counts in [[2], [1, 2, 5]]:  # each minibatch's count, over and over
        cycle = itertools.cycle(counts)

        def count():  # and the count set for the minibatch before, read back here
            callers.add(threading.get_ident())
            seen.append(OMP.omp_get_max_threads())
            return next(cycle)
        monkeypatch.setattr(d2l, 'free_cores', count)
        mx.random.seed(3)
        random.seed(3)
        trained.append(d2l.train_and_predict_rnn(
            rnn, get_params, init_state, 256, V, CPU, corpus, idx_to_char, char_to_idx, True, 3,
            35, 100, 0.01, 32, 10, 0, []))
    for p, q in zip(*trained):
        assert np.array_equal(p.asnumpy(), q.asnumpy())
    assert seen == [counted] + [2] * 6 + [1, 2, 5, 1, 2]  # 3 epochs of 2 minibatches, each
    assert callers == {threading.get_ident()}


@pytest.mark.skipif(shutil.which('gcc') is None, reason='needs gcc to build the spy library')
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason='needs 2 CPUs')
def test_each_minibatch_the_operators_run_with_a_thread_a_free_core(tmp_path):
    """Read back where the operators run (the main thread: the synchronous engine): two threads
    while the machine is free, one after another task came, two once it left, from one minibatch
    to the next within an epoch; the user's count stays."""
    env = unset('OMP_NUM_THREADS', 'MXNET_ENGINE_TYPE')
    main, batches = teams(env, tmp_path)
    assert batches == [{(main, n, n)} for n in (2, 1, 2)]
    _, engine = teams(dict(env, MXNET_ENGINE_TYPE='NaiveEngine'), tmp_path)  # the user's
    assert len({team for batch in engine for team in batch}) == 1  # the import's count, kept
    _, mine = teams(dict(env, OMP_NUM_THREADS='2'), tmp_path)
    assert [(count, size) for batch in mine for tid, count, size in batch] == [(2, 2)] * 3


@pytest.mark.parametrize('error', ["OSError('libarmpl_lp64_mp.so: cannot open shared object')",
                                   "ImportError('stand-in: no mxnet')"])
def test_when_mxnet_cannot_load_the_command_line_says_so_in_one_line(tmp_path, error):
    (tmp_path / 'mxnet').mkdir()
    (tmp_path / 'mxnet' / '__init__.py').write_text('raise %s\n' % error)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    cause = error.split("'")[1]
    code, out, err = cli('--help', env=env)
    assert code == 1 and out == '' and err.count('\n') == 1
    assert err.startswith('charrnn: error: cannot import mxnet') and cause in err
    assert 'pip install -r requirements.txt' in err
    p = subprocess.run([sys.executable, '-c', 'import charrnn'], capture_output=True, text=True,
                       env=env, cwd=HERE)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 1 and last.startswith('ImportError: cannot import mxnet')
    assert cause in last


@pytest.mark.slow
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


# ---------------------------------------------------------------- command line
def test_help_explains_every_flag_with_its_default():
    code, out, _ = cli('--help')
    assert code == 0 and 'import charrnn as d2l' in ' '.join(out.split())
    entries = ' '.join(out.split('show this help message and exit')[1].split()).split('--')[1:]
    flags = ['data', 'corpus-chars', 'val-frac', 'cell', 'hiddens', 'activation', 'sampler',
             'epochs', 'num-steps', 'batch-size', 'optimizer', 'lr', 'clip', 'dropout',
             'weight-decay', 'pred-period', 'pred-len', 'prefixes', 'temperature', 'seed']
    assert [entry.split()[0] for entry in entries] == flags
    assert all(entry.count('(default: ') == 1 for entry in entries) and 'None' not in out
    assert 'the first N characters used, 0: all' in out  # the whole file is read, then cut
    assert 'lr × W of each parameter' in out  # biases too


def test_each_samplers_header_says_which_of_how_many_and_one_epoch_is_singular(monkeypatch,
                                                                               capsys):
    monkeypatch.setattr(d2l, 'train_and_predict_rnn', lambda *a, **k: None)
    d2l.main(['--hiddens', '8'])
    d2l.main(['--hiddens', '8', '--epochs', '1', '--sampler', 'consecutive'])
    d2l.main(['--hiddens', '8', '--epochs', '2', '--sampler', 'random'])
    headers = [line for line in capsys.readouterr().out.splitlines() if line.startswith('==')]
    assert headers == ['== random sampling (1 of 2), 1000 epochs, on %s' % d2l.ctx,
                       '== consecutive sampling (2 of 2), 1000 epochs, on %s' % d2l.ctx,
                       '== consecutive sampling (1 of 1), 1 epoch, on %s' % d2l.ctx,
                       '== random sampling (1 of 1), 2 epochs, on %s' % d2l.ctx]


def test_the_default_run_is_the_notebooks(monkeypatch):
    args = d2l.parse_args([])
    assert (args.corpus_chars, args.cell, args.hiddens, args.activation, args.sampler) == (
        10000, 'rnn', 256, 'relu', 'both')
    assert (args.epochs, args.num_steps, args.batch_size, args.lr, args.clip) == (
        1000, 35, 32, None, None)  # None: sgd's 100 and 0.01
    assert (args.pred_period, args.pred_len, args.prefixes) == (100, 50, ['分开', '不分开'])
    calls = []
    monkeypatch.setattr(d2l, 'train_and_predict_rnn', lambda *a, **k: calls.append(a))
    d2l.main(['--hiddens', '8'])
    assert [(c[9], c[12], c[13], c[14]) for c in calls] == [(True, 100, 0.01, 32),
                                                            (False, 100, 0.01, 32)]


@pytest.mark.parametrize('flags, cell, lr, clip, keywords', [
    ('--cell lstm --optimizer adam', 'lstm', 0.002, 1, {}),
    ('--cell lstm --optimizer adam --lr 0.003 --clip 2', 'lstm', 0.003, 2, {}),
    ('--activation tanh --dropout 0.5 --weight-decay 0.001 --temperature 0.8', 'rnn', 100, 0.01,
     {'activation': 'tanh', 'drop_probs': (0.5, 0.5)}),
])
def test_the_command_lines_settings_reach_the_trainer(corpus_txt, monkeypatch, flags, cell, lr,
                                                      clip, keywords):
    calls = []
    monkeypatch.setattr(d2l, 'train_and_predict_rnn', lambda *a, **k: calls.append((a, k)))
    d2l.main(['--data', corpus_txt, '--sampler', 'consecutive', '--corpus-chars', '0',
              '--hiddens', '8'] + flags.split())
    (args, kw), = calls
    assert args[0].func is cell_fns(cell)[2] and args[2] is cell_fns(cell)[1]
    assert args[0].keywords == dict({'drop_probs': (0, 0)}, **keywords)
    assert (len(args[6]), args[9], args[12], args[13]) == (len(TEXT), False, lr, clip)
    assert (kw['adam_state'] is not None) == ('adam' in flags) and args[5] == d2l.ctx
    assert kw['temperature'] == (0.8 if 'temperature' in flags else 0)
    assert kw['weight_decay'] == (0.001 if 'weight' in flags else 0)


def test_val_frac_holds_out_the_texts_last_share_and_trains_on_the_rest(corpus_txt, monkeypatch):
    calls = []
    monkeypatch.setattr(d2l, 'train_and_predict_rnn', lambda *a, **k: calls.append((a, k)))
    d2l.main(['--data', corpus_txt, '--sampler', 'random', '--val-frac', '0.3', '--hiddens', '8'])
    (args, kw), = calls
    corpus = d2l.load_data_jay_lyrics(corpus_txt)[0]
    n_val = int(len(TEXT) * 0.3)  # 46 of 156
    assert list(args[6]) == corpus[:-n_val] and list(kw['val_indices']) == corpus[-n_val:]


def test_a_seed_repeats_a_run(corpus_txt):
    flags = ['--data', corpus_txt, '--sampler', 'random', '--epochs', '3', '--seed', '5',
             '--dropout', '0.3', '--temperature', '1', *TINY]
    runs = [cli(*flags) for _ in range(2)]
    texts = [[line for line in out.splitlines() if line.startswith(' - ')] for _, out, _ in runs]
    assert runs[0][0] == 0 and texts[0] == texts[1] and len(texts[0]) == 2


@pytest.mark.parametrize('args, message', [
    (['--data', 'absent.zip'], 'No such file'),
    (['--prefixes', '分龍'], "--prefixes 分龍: each 1 or more of the text's characters (not '龍')"),
    (['--prefixes', '分', ''], "(not '')"),
    (['--num-steps', '5000'], 'no minibatch: --batch-size 4 × --num-steps 5000 needs 20001 '
     'characters, not %d' % len(TEXT)),
    (['--val-frac', '0.01'], 'held out (--val-frac): 1 characters, no window'),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(corpus_txt, args, message):
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(['--data', corpus_txt, '--epochs', '1', '--sampler', 'random'] + TINY[2:] + args)
    text = str(exit_info.value.code)
    assert text.startswith('charrnn: error: ') and message in text and '\n' not in text


def test_a_file_name_with_a_line_break_stays_on_the_one_line_of_the_error(tmp_path):
    for name in ['bad\nname.txt', 'bad\nname.zip']:
        (tmp_path / name).write_bytes(b'\xff' if name.endswith('txt') else b'not a zip')
        for path in [tmp_path / name, tmp_path / 'absent' / name]:
            code, out, err = cli('--data', str(path), *TINY)
            assert (code, out) == (1, '') and err.count('\n') == 1, err
            assert repr(str(path)) in err


def test_the_default_prefixes_are_named_when_the_text_lacks_them(tmp_path):
    path = tmp_path / 'english.txt'
    path.write_text('the cat sat on the mat ' * 20)
    code, out, err = cli('--data', str(path), '--sampler', 'random', *TINY)
    assert code == 1 and out == ''
    assert err.startswith("charrnn: error: --prefixes 分开 不分开 (the default): each 1 or more ")
    assert err.count('\n') == 1


@pytest.mark.parametrize('args', [
    ['--epochs', '0'], ['--lr', '-1'], ['--lr', 'inf'], ['--clip', 'nan'], ['--batch-size', 'x'],
    ['--dropout', '1'], ['--val-frac', '-0.1'], ['--temperature', 'nan'],
    ['--weight-decay', '-1'], ['--pred-len', '-1'], ['--cell', 'cnn'],
    ['--lr', '1e-50'], ['--clip', '1e-39'],  # 0 in float32; below its least normal number
    ['--pred-period', '0'], ['--hiddens', '0'], ['--num-steps', '0'], ['--batch-size', '0'],
    ['--corpus-chars', '-1'], ['--val-frac', '1'], ['--temperature', 'inf'],
    ['--weight-decay', 'inf'], ['--dropout', '-0.5'],
    ['--hiddens', '46341'], ['--hiddens', '3000000000'],  # W_hh: 46341² > 2³¹, MXNet's limit
    ['--lr', '3.5e38'], ['--clip', '3.5e38'], ['--weight-decay', '3.5e38'],  # past float32's max
    ['--weight-decay', '1e-50'],  # 0 in float32, where 0 was not asked for
])
def test_malformed_flags_are_argparse_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        d2l.parse_args(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and 'error:' in err and args[0] in err.splitlines()[-1]


def test_the_least_and_largest_flags_that_float32_and_mxnet_take_are_accepted():
    for flag in ['--lr', '--clip', '--weight-decay']:
        for value in ['1.1755e-38', '3.4028e38']:  # float32: 1.17549e-38 to 3.40282e38
            assert getattr(d2l.parse_args([flag, value]), flag[2:].replace('-', '_')) == float(
                value)
        for value in ['1.175e-38', '3.403e38']:
            with pytest.raises(SystemExit):
                d2l.parse_args([flag, value])
    assert d2l.parse_args(['--hiddens', '46340', '--weight-decay', '0']).weight_decay == 0


def test_a_corrupt_or_wrong_corpus_in_a_new_process_is_one_line(tmp_path):
    texts = {'none.zip': None, 'corrupt.zip': b'PK\x03\x04' + b'\x00' * 100,
             'latin.txt': 'café'.encode('latin-1'), 'gbk.txt': '分开 不分开 '.encode('gbk') * 5000}
    with zipfile.ZipFile(tmp_path / 'no-text.zip', 'w') as z:
        z.writestr('a.csv', 'x')
    for name, data in texts.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    for name in list(texts) + ['no-text.zip']:
        code, out, err = cli('--data', str(tmp_path / name))
        assert code == 1 and err.startswith('charrnn: error: ') and err.count('\n') == 1, err
        assert len(err) < 150 + len(str(tmp_path)) and 'Traceback' not in err


def test_held_out_perplexity_is_on_characters_never_trained_on(tmp_path, capsys):
    path = tmp_path / 'two_parts.txt'
    path.write_text('abcd' * 60 + 'dcba' * 20, encoding='utf-8')  # the last quarter backwards
    d2l.main(['--data', str(path), '--prefixes', 'a', '--seed', '0', '--val-frac', '0.25']
             + '--sampler consecutive --epochs 60 --pred-period 60'.split() + TINY)
    out = capsys.readouterr().out
    assert out.startswith('240 characters to train on, vocabulary 4: rnn of 16 hidden units')
    line = [line for line in out.splitlines() if line.startswith('epoch 60/60')][0]
    train = float(line.split(' perplexity ')[1].split(',')[0])
    val = float(line.split('val perplexity ')[1].split(',')[0])
    assert train < 1.5 < 3 < val  # it learnt abcd, and dcba was never shown to it


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
    assert errors == [] and 'epoch 1/1,' in capsys.readouterr().out


def test_ctrl_c_ends_the_run_in_one_line_with_status_130(corpus_txt):
    p = start('--data', corpus_txt, '--sampler', 'random', '--epochs', '100000',
              '--pred-period', '1', *TINY)
    read_until(p.stdout, ' - 不分开')  # a report is out: training runs
    code, out, err = interrupt(p)
    assert (code, err) == (130, 'charrnn: interrupted\n')
    code, out, err = cli('--data', corpus_txt, '--sampler', 'random', '--epochs', '3', *TINY)
    assert code == 0 and '\r' not in out + err and 's/epoch, ETA 0:00:00' in out  # a log: clean


def test_a_ctrl_c_before_training_is_one_line_too(tmp_path):
    import threading

    slow = tmp_path / 'slow.txt'
    os.mkfifo(slow)  # the run waits for its text: a moment when it is not training
    p = start('--data', str(slow))
    opened = []
    writer = threading.Thread(target=lambda: opened.append(os.open(slow, os.O_WRONLY)))
    writer.start()  # the open returns once the run has opened the text: the sign
    writer.join(timeout=60)
    assert opened and p.poll() is None
    code, out, err = interrupt(p)
    os.close(opened[0])
    assert (code, out, err) == (130, '', 'charrnn: interrupted\n')


def test_output_that_cannot_show_chinese_is_one_line_closed_or_cut_short_ends_quietly(corpus_txt):
    flags = ['--data', corpus_txt, '--sampler', 'random', '--epochs', '2', '--pred-period', '1']
    code, out, err = cli(*flags, *TINY, env=dict(os.environ, PYTHONIOENCODING='latin-1'))
    assert code == 1 and err.count('\n') == 1
    assert err.startswith("charrnn: error: 'latin-1' codec can't encode characters")
    p = subprocess.run([sys.executable, str(HERE / 'charrnn.py'), *flags, *TINY], cwd=HERE,
                       stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))  # >&-
    assert (p.returncode, p.stderr) == (0, b'')
    p = start(*flags[:-3], '100000', '--pred-period', '1', *TINY)
    for _ in range(3):  # as `| head -n 3` does: three lines, then the pipe is closed
        p.stdout.readline()
    p.stdout.close()
    assert p.wait(timeout=60) == -signal.SIGPIPE and p.stderr.read() == ''


def test_a_ctrl_c_that_mxnet_turns_into_a_type_error_is_an_interrupt(corpus_txt, monkeypatch,
                                                                     capsys):
    """nd.array catches every exception of np.array and raises TypeError('source_array must be
    array like object'): a Ctrl-C landing there was 'charrnn: error: ...', status 1."""
    def interrupted_in_nd_array(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except BaseException:
            raise TypeError('source_array must be array like object')

    monkeypatch.setattr(d2l, 'train_and_predict_rnn', interrupted_in_nd_array)
    with pytest.raises(SystemExit) as exit_info:
        d2l.main(['--data', corpus_txt, '--sampler', 'random'] + TINY)
    assert (exit_info.value.code, capsys.readouterr().err) == (130, 'charrnn: interrupted\n')


def test_with_stderr_closed_an_interrupt_writes_nothing_to_stdout(corpus_txt):
    """2>&-: sys.stderr is None, and print(file=None) would write 'interrupted' to stdout."""
    def closed_stderr():
        ctrl_c_works()
        os.close(2)

    p = start('--data', corpus_txt, '--sampler', 'random', '--epochs', '100000',
              '--pred-period', '1', *TINY, preexec_fn=closed_stderr)
    read_until(p.stdout, 'epoch 1/')
    code, out, _ = interrupt(p)
    assert code == 130 and 'interrupted' not in out


def test_out_of_memory_is_one_line_naming_it(corpus_txt):
    import resource

    def little_memory():  # as `ulimit -v 4000000` would
        resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))

    code, out, err = cli('--data', corpus_txt, '--sampler', 'random', '--hiddens', '40000',
                         '--num-steps', '8', '--batch-size', '4', preexec_fn=little_memory)
    assert (code, err) == (1, 'charrnn: error: MXNetError: Failed to allocate CPU Memory\n')


def test_the_gpus_that_work_are_named_alike_everywhere():
    ranges = [set(re.findall(r'(Kepler|Maxwell|Pascal|Volta|Turing) to (Ampere|Ada|Hopper)',
                             (HERE / name).read_text(encoding='utf-8')))
              for name in ['README.md', 'requirements-gpu.txt', 'docs/platforms.md']]
    assert ranges == [{('Maxwell', 'Ada')}] * 3


def test_readme_test_command_is_what_ci_runs():
    readme = (HERE / 'README.md').read_text(encoding='utf-8')
    ci = (HERE / '.ci' / 'run').read_text(encoding='utf-8')
    command = [line for line in ci.splitlines() if 'pytest' in line and line[0] != '#'][0].strip()
    assert command in readme


# ---------------------------------------------------------------- tools
RECIPE_SMALL = ['--corpus-chars', '2889', '--epochs', '1', '--hiddens', '8', '--embed', '8']


@pytest.fixture(scope='module')
def recipe_dev():
    return tool('recipe_dev')


def tool(name):
    """tools/NAME.py as a module; its main is not run."""
    spec = importlib.util.spec_from_file_location(name, HERE / 'tools' / (name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('args', [
    ['--hiddens', '0'], ['--embed', '0'], ['--epochs', '0'], ['--epochs', '1.5'],
    ['--smoothing', '1'], ['--smoothing', '-0.1'], ['--smoothing', 'nan'],
    ['--drop', '0', '0', '1', '0'], ['--drop', '0', 'nan', '0', '0'],
    ['--drop', '-0.1', '0', '0', '0'], ['--drop', '0', '0', '0'],
    ['--lr', '0'], ['--lr', '1.175e-38'], ['--lr', '3.5e38'], ['--lr', 'inf'], ['--lr', 'nan'],
    ['--dynamic', '1', '-1'], ['--dynamic', '1e-50'], ['--dynamic', '3.5e38'], ['--dynamic', 'nan'],
    ['--seed', 'x'], ['--corpus-chars', '-1'],
    ['--corpus-chars', '2888'],  # 2340 to train on; a minibatch from offset 69 needs 2341
    # 2³¹ numbers or more in W_h*, 46341², or in E, 2582 characters × 831714 (831713: fewer)
    ['--hiddens', '46341'], ['--embed', '831714', '--corpus-chars', '0'],
])
def test_recipe_dev_refuses_a_bad_flag_in_one_line_with_status_2(recipe_dev, args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        recipe_dev.main(RECIPE_SMALL + args)  # small: a flag let through is a short run
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == '' and err.count('error:') == 1
    last = err.splitlines(True)[-1]  # the usage above it, no traceback
    assert re.match(r'\S+: error: ', last) and args[0] in last and last.endswith('\n')


def test_recipe_dev_hiddens_0_in_a_new_process_is_usage_and_one_line():
    p = subprocess.run([sys.executable, str(HERE / 'tools' / 'recipe_dev.py'), '--hiddens', '0'],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == '' and p.stderr.startswith('usage: recipe_dev.py ')
    assert p.stderr.splitlines(True)[-1] == 'recipe_dev.py: error: --hiddens must be 1 or more\n'


def test_recipe_dev_takes_the_least_corpus_and_the_extreme_rates(recipe_dev, capsys):
    recipe_dev.main(RECIPE_SMALL + ['--lr', '1.1755e-38', '--dynamic', '0', '3.4028e38'])
    out = capsys.readouterr().out
    assert 'best dev perplexity' in out and 'dynamic evaluation at learning rate 3.4028e+38' in out
    with pytest.raises(SystemExit) as exit_info:  # a rate float32 takes, and the model diverges
        recipe_dev.main(RECIPE_SMALL + ['--lr', '3.4028e38'])
    assert exit_info.value.code == ('recipe_dev.py: error: the dev perplexity was inf after every '
                                    'epoch: the model diverged; lower --lr (3.4028e+38)')


@pytest.fixture(scope='module')
def mutants():
    return tool('mutants')


@pytest.mark.parametrize('status, output, result', [
    (0, '....  [100%]\n4 passed in 1.00s\n', ('passed', '')),
    (1, 'FAILED test_charrnn.py::test_a[--cell gru - x] - AssertionError: assert 1 == ...\n'
     '!!! stopping after 1 failures !!!\n1 failed, 3 passed in 1.00s\n',
     ('failed', 'test_charrnn.py::test_a[--cell gru - x]')),
    (1, 'FAILED test_charrnn.py::test_a\n', ('failed', 'test_charrnn.py::test_a')),
    (1, 'ERROR test_charrnn.py::test_b - RuntimeError: x\n1 error in 1.00s\n',
     ('an error outside the body of', 'test_charrnn.py::test_b')),
    (1, 'ERROR test_charrnn.py\n!!! stopping after 1 failures !!!\n1 error in 1.00s\n',
     ('a collection error in', 'test_charrnn.py')),
    (2, 'ERROR test_charrnn.py - SyntaxError: invalid syntax\nInterrupted: 1 error during '
     'collection\n', ('a collection error in', 'test_charrnn.py')),
    (2, 'FAILED test_charrnn.py::test_a\n!!! KeyboardInterrupt !!!\n', ('crashed with', 'exit 2')),
    (-11, '....', ('crashed with', 'signal 11')),
    (255, 'Segmentation fault: 11\n', ('crashed with', 'exit 255')),
    (1, '....', ('crashed with', 'exit 1')),  # no test named
    (5, 'no tests ran in 0.01s\n', ('crashed with', 'exit 5')),
    (None, '', ('timed out', '')),
])
def test_mutants_reads_a_failed_test_only_from_status_1_and_a_failure_named(
        mutants, status, output, result):
    assert mutants.outcome(status, output) == result


@pytest.mark.parametrize('first, rerun, result', [
    (('passed', ''), None, (False, 'MISSED')),
    (('failed', 'test_charrnn.py::test_a[x]'), ('passed', ''), (True, 'caught by test_a[x]')),
    (('failed', 'test_charrnn.py::test_a'), ('failed', 'test_charrnn.py::test_a'),
     (False, 'FLAKY: test_a fails unedited too')),
    (('failed', 'test_charrnn.py::test_a'), ('timed out', ''),
     (False, 'NOT CAUGHT: test_a failed, then unedited timed out')),
    (('timed out', ''), None, (False, 'NOT CAUGHT: timed out')),
    (('crashed with', 'signal 11'), None, (False, 'NOT CAUGHT: crashed with signal 11')),
    (('a collection error in', 'test_charrnn.py'), None,
     (False, 'NOT CAUGHT: a collection error in test_charrnn.py')),
])
def test_mutants_counts_an_edit_caught_only_by_a_test_that_passes_unedited(
        mutants, first, rerun, result):
    assert mutants.verdict(first, rerun) == result


def test_mutants_runs_a_toy_projects_edits_each_within_its_time_limit(mutants, tmp_path):
    sleeper = tmp_path / 'sleeper'
    (tmp_path / 'charrnn.py').write_text('import os\nimport pathlib\nimport subprocess\n'
                                         'import time\n\n\ndef f():\n    return 1\n')
    (tmp_path / 'test_toy.py').write_text('import charrnn\n\n\ndef test_f():\n'
                                          '    assert charrnn.f() == 1\n')
    hang = ("pathlib.Path(%r).write_text(str(subprocess.Popen(['sleep', '60']).pid))\n"
            '    time.sleep(60)' % str(sleeper))
    for new, limit, result in [
            ('return 2', 60, (True, 'caught by test_f')),
            ('return 1 + 0', 60, (False, 'MISSED')),
            ('return (', 60, (False, 'NOT CAUGHT: a collection error in test_toy.py')),
            ('os.kill(os.getpid(), 9)', 60, (False, 'NOT CAUGHT: crashed with signal 9')),
            (hang, 3, (False, 'NOT CAUGHT: timed out'))]:
        start = time.time()
        assert mutants.run('return 1', new, 'charrnn.py', limit, tmp_path) == result
        assert time.time() - start < 30  # the hang cut at its limit, not at its end (60 s)
    stat = pathlib.Path('/proc/%s/stat' % sleeper.read_text())
    for _ in range(100):  # SIGKILL is sent, not yet done, on a busy machine: up to 5 s
        with contextlib.suppress(OSError):
            if stat.read_text().split()[2] != 'Z':
                time.sleep(0.05)
                continue
        break
    assert not stat.exists() or stat.read_text().split()[2] == 'Z'  # killed with its group
    with open(tmp_path / 'test_toy.py', 'a') as f:  # a test after it that always fails
        f.write('\n\ndef test_g():\n    assert False\n')
    assert mutants.run('return 1', 'return 2', 'charrnn.py', 60, tmp_path) == (
        True, 'caught by test_f')  # test_f alone run again
    (tmp_path / 'test_toy.py').write_text('import charrnn\n\n\ndef test_f():\n'
                                          '    assert charrnn.f() == 3\n')  # fails unedited
    assert mutants.run('return 1', 'return 2', 'charrnn.py', 60, tmp_path) == (
        False, 'FLAKY: test_f fails unedited too')


# ---------------------------------------------------------------- the lab, in a notebook
def lab_cells():
    return [c for c in json.loads((HERE / 'docs' / 'lab.ipynb').read_text(encoding='utf-8'))
            ['cells'] if c['cell_type'] == 'code']


def cell_fns(name):
    """(get_params, init_state, cell): charrnn's rnn and lstm, or the lab's GRU, which its cells
    define on charrnn's pieces (get_gru_params, init_gru_state, gru)."""
    if name in d2l.CELLS:
        return d2l.CELLS[name]
    return lab_functions('get_gru_params', 'init_gru_state', 'gru',
                         namespace={'d2l': d2l, 'nd': nd, 'functools': functools})


def lab_functions(*names, namespace=None):
    """The lab's functions (and names assigned once) of these names, defined alone, as its cells
    write them, in namespace (what they read as they are defined)."""
    import ast
    namespace = {} if namespace is None else namespace
    for cell in lab_cells():
        tree = ast.parse(''.join(cell['source']))
        tree.body = [node for node in tree.body
                     if isinstance(node, ast.FunctionDef) and node.name in names
                     or isinstance(node, ast.Assign) and len(node.targets) == 1
                     and getattr(node.targets[0], 'id', None) in names]
        exec(compile(tree, 'lab.ipynb', 'exec'), namespace)
    return [namespace[name] for name in names]


def test_the_lab_imports_charrnn_before_numpy():
    """charrnn counts the free cores before numpy's thread starts: only if it comes first."""
    imports = [line.split('  #')[0] for line in ''.join(lab_cells()[0]['source']).splitlines()
               if line.startswith(('import ', 'from '))]
    assert imports[:2] == ['import sys', 'import charrnn as d2l']


def test_the_labs_checkpoint_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A write that fails part-way (a full disk) leaves no file, so a retry works; a file that
    exists stays as it was; what is read back is what was saved."""
    import contextlib
    import uuid
    save, load = lab_functions('save_checkpoint', 'load_checkpoint')
    save.__globals__.update(contextlib=contextlib, json=json, os=os, np=np, nd=nd, uuid=uuid)
    params = [nd.array(np.arange(6).reshape(2, 3)), nd.array([0.5, -1])]
    path = tmp_path / 'best.npz'

    def disk_full(f, *args, **kwargs):
        f.write(b'PK\x03\x04 half of an archive')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(np, 'savez', disk_full)
    with pytest.raises(OSError, match='No space left'):
        save(path, params, ['分', '开'], {'cell': 'rnn'})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    save(path, params, ['分', '开'], {'cell': 'rnn'})
    kept = path.read_bytes()
    with pytest.raises(FileExistsError):
        save(path, [p * 2 for p in params], ['x'], {})
    assert path.read_bytes() == kept and list(tmp_path.iterdir()) == [path]
    loaded, idx_to_char, config = load(path, CPU)
    assert [p.asnumpy().tolist() for p in loaded] == [p.asnumpy().tolist() for p in params]
    assert (idx_to_char, config) == (['分', '开'], {'cell': 'rnn'})


def test_of_two_checkpoints_saved_at_once_one_wins_whole(tmp_path, monkeypatch):
    """Save B starts and ends while save A is writing: B's file is kept whole under the name, A
    gets FileExistsError, and neither leaves a part behind."""
    import contextlib
    import uuid
    save, load = lab_functions('save_checkpoint', 'load_checkpoint')
    save.__globals__.update(contextlib=contextlib, json=json, os=os, np=np, nd=nd, uuid=uuid)
    path, savez = tmp_path / 'best.npz', np.savez

    def savez_while_b_saves(f, *args, **kwargs):
        savez(f, *args, **kwargs)
        monkeypatch.setattr(np, 'savez', savez)
        save(path, [nd.array([2.0])], ['b'], {'by': 'B'})

    monkeypatch.setattr(np, 'savez', savez_while_b_saves)
    with pytest.raises(FileExistsError):
        save(path, [nd.array([1.0])], ['a'], {'by': 'A'})
    params, idx_to_char, config = load(path, CPU)
    assert (params[0].asnumpy().tolist(), idx_to_char, config) == ([2.0], ['b'], {'by': 'B'})
    assert list(tmp_path.iterdir()) == [path]


def project_files():
    """Each tracked file's hash, and git's account of the tree (untracked files included); out
    of a git checkout (an unpacked archive), each file's in the root and docs/ but the corpus."""
    def git(*args):
        return subprocess.run(['git', *args], cwd=HERE, capture_output=True, check=True).stdout
    try:
        files = [HERE / name.decode() for name in git('ls-files', '-z').split(b'\0') if name]
        status = git('status', '--porcelain', '--untracked-files=all')
    except (OSError, subprocess.CalledProcessError):
        files = [path for folder in [HERE, HERE / 'docs'] for path in folder.iterdir()
                 if path.is_file() and path.name != os.path.basename(d2l.DATA_PATH)]
        status = None
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in files
            if path.is_file()}, status


@pytest.mark.slow
def test_the_lab_notebook_runs_in_a_real_kernel_at_its_quick_setting(monkeypatch):
    """docs/lab.ipynb as committed, quick = True, from a clean kernel (nbclient, ipykernel): no
    error; it says it is the quick run; the picture a PNG redrawn in place and written to a
    file; the count model, the checkpoint, the mixture, the second recipe and the adaptive
    models computed; no tracked file changed and no file added to the project."""
    import nbformat
    from nbclient import NotebookClient

    messages = []

    class Recorder(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            messages.append((msg['msg_type'], msg['content']))
            return super().process_message(msg, cell, cell_index)

    monkeypatch.delenv('CHARRNN_LAB_SAVE', raising=False)  # only the regenerate command sets it
    notebook = nbformat.read(HERE / 'docs' / 'lab.ipynb', as_version=4)
    settings = [c for c in notebook.cells if 'settings' in c.metadata.get('tags', [])]
    assert len(settings) == 1
    assert len(re.findall(r'^quick = (True|False)  # ←', settings[0].source, re.M)) == 1
    assert re.search(r'^quick = True  # ←', settings[0].source, re.M)  # a first evening's
    before = project_files()
    Recorder(notebook, timeout=600, kernel_name='python3',
             resources={'metadata': {'path': str(HERE / 'docs')}}).execute()
    (hashes, status), (hashes_before, status_before) = project_files(), before
    changed = [str(path) for path in set(hashes) | set(hashes_before)
               if hashes.get(path) != hashes_before.get(path)]
    assert (changed, status) == ([], status_before)
    outputs = [o for cell in notebook.cells for o in cell.get('outputs', [])]
    assert outputs and not [o for o in outputs if o.output_type == 'error']
    streams = ''.join(c['text'] for kind, c in messages
                      if kind == 'stream' and c['name'] == 'stdout')
    assert streams.count("QUICK RUN (quick = True): small settings; the numbers and pictures "
                         "below are this run's, not the saved run's") == 2
    (written,) = re.findall(r'^it writes (.*)$', streams, re.M)
    picture, repeat_picture, checkpoint = map(pathlib.Path, written.split(', '))
    redrawn = [c for kind, c in messages if kind == 'update_display_data']
    assert len(redrawn) >= 2 and all(c['data']['image/png'] for c in redrawn)
    assert picture.read_bytes().startswith(b'\x89PNG')
    assert checkpoint.exists()
    assert re.search(r'5-gram count model, held out: \d+\.\d', streams)
    assert re.search(r'0\.3 network \+ 0\.7 count model: \d+\.\d', streams)
    for line in ['recipe held-out perplexity', 'adaptive count model, held out',
                 'adaptive network, held out']:  # once each, for a script to read
        assert len(re.findall(r'^%s: \d+\.\d$' % line, streams, re.M)) == 1
    assert repeat_picture.read_bytes().startswith(b'\x89PNG')
    assert picture.parent == repeat_picture.parent == checkpoint.parent != HERE / 'docs'
    shutil.rmtree(picture.parent)


def lab_globals(*functions):
    """The names the lab's functions read from its first cells."""
    import collections
    for f in functions:
        f.__globals__.update(collections=collections, math=math, np=np, nd=nd, d2l=d2l,
                             autograd=autograd, ctx=CPU, random=random, time=time)
    return functions


def batch_kneser_ney(text, vocab_size, order, discount):
    """The lab's first kneser_ney, from whole-text counts, with the discounts given."""
    import collections
    raw = {k: collections.Counter(text[i:i + k] for i in range(len(text) - k + 1))
           for k in range(1, order + 1)}
    counts = {k: raw[k] if k == order else collections.Counter(g[1:] for g in raw[k + 1])
              for k in raw}

    def prob(c, context):
        p = (counts[1][c] + 0.5) / (sum(counts[1].values()) + 0.5 * vocab_size)
        for k in range(2, min(order, len(context) + 1) + 1):
            h = context[len(context) - k + 1:]
            total = sum(n for g, n in counts[k].items() if g[:-1] == h)
            if total:
                kinds = sum(1 for g in counts[k] if g[:-1] == h)
                D = discount[k]
                p = (max(counts[k][h + c] - D, 0) + D * kinds * p) / total
        return p
    return prob


def test_the_labs_count_model_that_keeps_counting_is_the_count_model_of_all_it_has_read():
    """Adapting, the target at j is scored by the counts of the training text and the held-out
    text before j, the training discounts kept; static, by the training counts alone."""
    kneser_ney, count_log_probs, scored_targets = lab_globals(*lab_functions(
        'kneser_ney', 'count_log_probs', 'scored_targets'))
    train, val, V, order = 'abcab abca bcbb ac', 'abcabbcab cc abca', 7, 3
    prob, _ = kneser_ney(train, V, order)
    import collections
    discount = {}
    for k in range(2, order + 1):  # the training discounts, from the whole-text counts
        top = collections.Counter(train[i:i + k] for i in range(len(train) - k + 1))
        kth = top if k == order else collections.Counter(
            g[1:] for g in collections.Counter(train[i:i + k + 1]
                                               for i in range(len(train) - k)))
        n1, n2 = [sum(n == m for n in kth.values()) for m in (1, 2)]
        discount[k] = n1 / (n1 + 2 * n2)
    static = batch_kneser_ney(train, V, order, discount)
    for j in range(len(train)):  # the lab's counts are the whole text's
        for c in 'abc x':
            assert prob(c, train[max(0, j - 2):j]) == pytest.approx(
                static(c, train[max(0, j - 2):j]), rel=1e-12)
    targets = list(scored_targets(len(train), len(val), 4))
    text = train + val
    expected = {False: [math.log(static(text[j], text[j - 2:j])) for j in targets],
                True: [math.log(batch_kneser_ney(text[:j], V, order, discount)(
                    text[j], text[j - 2:j])) for j in targets]}
    for adapt in (False, True):
        got = count_log_probs(train, val, V, 4, order, adapt=adapt)
        assert got.tolist() == pytest.approx(expected[adapt], rel=1e-12)
    assert expected[True] != pytest.approx(expected[False])


def test_the_labs_dynamic_evaluation_scores_each_window_then_takes_one_sgd_step_on_it():
    """Window k is scored by the parameters after k - 1 steps, each step lr × the gradient of
    the mean loss of the window before, the state carried; the caller's parameters stay."""
    (network_log_probs,) = lab_globals(*lab_functions('network_log_probs'))

    def cell(inputs, state, params):  # dropout only while training
        return d2l.rnn(inputs, state, params, drop_probs=(0.5, 0.5))

    V, H, lr, indices = 6, 5, 0.7, [0, 3, 1, 4, 2, 5, 5, 1, 0, 2, 3, 4, 1]
    mx.random.seed(3)
    params = [p * 30 for p in d2l.get_params(V, H, CPU)]  # large enough to learn from
    kept = [p.asnumpy() for p in params]
    static = network_log_probs(cell, params, d2l.init_rnn_state, H, V, CPU, indices, 4)
    adapted = network_log_probs(cell, params, d2l.init_rnn_state, H, V, CPU, indices, 4, lr)
    assert [p.asnumpy().tolist() for p in params] == [p.tolist() for p in kept]
    expected, state = [], d2l.init_rnn_state(1, H, CPU)
    current = [nd.array(p) for p in kept]
    for X, Y in d2l.data_iter_consecutive(indices, 1, 4, CPU):
        for p in current:
            p.attach_grad()
        with autograd.record():
            outputs, state = d2l.rnn(d2l.to_onehot(X, V), state, current)
            loss = d2l.sequence_loss(outputs, Y)
        log_softmax = nd.log_softmax(nd.concat(*outputs, dim=0)).asnumpy()
        expected += log_softmax[np.arange(len(Y[0])), Y[0].asnumpy().astype(int)].tolist()
        loss.backward()
        current = [p - lr * p.grad for p in current]
        state = tuple(s.detach() for s in state)
    assert len(static) == len(adapted) == 12  # three windows: the second step counts too
    assert adapted.tolist() == pytest.approx(expected, abs=1e-5)
    assert adapted[:4].tolist() == pytest.approx(static[:4].tolist(), abs=1e-6)
    assert np.abs(adapted[4:] - static[4:]).max() > 1e-3


def test_the_labs_label_smoothing_is_the_smoothed_cross_entropy():
    (smoothed_loss,) = lab_globals(*lab_functions('smoothed_loss'))
    logits = np.random.RandomState(0).randn(6, 5)  # 3 steps of a batch of 2
    Y = np.array([[1, 4, 0], [2, 2, 3]])
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    targets = Y.T.reshape(-1)
    for a in (0, 0.1, 0.3):
        want = np.mean([-(1 - a) * log_p[i, y] - a * log_p[i].mean()
                        for i, y in enumerate(targets)])
        got = smoothed_loss(list(nd.array(logits).split(3, axis=0)), nd.array(Y), a).asscalar()
        assert got == pytest.approx(want, rel=1e-5)


def test_the_labs_recipe_adds_the_last_and_last_two_characters_tables():
    """With the network's weights at zero, the logits are A[x_t] + B[row of (x_{t-1}, x_t)]:
    a pair seen once shares the last row, and the character before a window is carried."""
    pair_contexts, get_recipe_params, init_recipe_state, recipe_cell = lab_globals(
        *lab_functions('pair_contexts', 'get_recipe_params', 'init_recipe_state', 'recipe_cell'))
    V, train = 4, [0, 1, 2, 0, 1, 2, 3, 3, 1]
    pair_rows, n_pairs = pair_contexts(train, V)
    assert n_pairs == 3  # (0, 1) and (1, 2) twice, and the shared row
    rows = {(a, b): int(pair_rows[a * V + b].asscalar()) for a in range(V) for b in range(V)}
    assert (rows[0, 1], rows[1, 2]) == (0, 1) and set(rows.values()) == {0, 1, 2}
    params = get_recipe_params(V, n_pairs, CPU, np.ones(V), embed=3, hiddens=2)
    tables = [(p.shape, p.grad is not None) for p in params[-2:]]
    assert tables == [((V, V), True), ((n_pairs, V), True)]
    rng = np.random.RandomState(1)
    for p in params[:-3]:
        p[:] = 0
    params[-3][:] = 0  # b_q
    A, B = rng.randn(V, V), rng.randn(n_pairs, V)
    params[-2][:], params[-1][:] = A, B
    cell = recipe_cell(pair_rows)
    state = init_recipe_state(2, 2, CPU)
    last = np.zeros(2, dtype=int)  # index 0 before the first character
    for window in (np.array([[1, 2, 0], [3, 0, 1]]), np.array([[1, 2, 3], [2, 0, 1]])):
        outputs, state = cell(d2l.to_onehot(nd.array(window), V), state, params)
        for t, O in enumerate(outputs):
            before = window[:, t - 1] if t else last
            want = [A[x] + B[rows[b, x]] for b, x in zip(before, window[:, t])]
            assert O.asnumpy() == pytest.approx(np.array(want), abs=1e-6)
        last = window[:, -1]


def test_the_labs_repeats_count_earlier_ngrams_in_the_text_and_before_it():
    (repeats,) = lab_globals(*lab_functions('repeats'))
    # the 2-grams of 'abab': ab, ba, ab (the third met in itself); before 'xba' holds ba
    assert repeats('abab', 2, 'xba') == (1 / 3, 1 / 3)
    assert repeats('abcd', 2, '') == (0, 0)


def test_the_labs_floor_mixes_the_softmax_with_the_uniform():
    (floored,) = lab_globals(*lab_functions('floored'))
    logits = np.random.RandomState(2).randn(3, 4) * 5

    def cell(inputs, state, params):
        return [nd.array(logits)], state

    outputs, _ = floored(cell, 0.2)(None, (), None)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.exp(outputs[0].asnumpy()) == pytest.approx(0.8 * p + 0.2 / 4, rel=1e-5)


def test_the_labs_recipe_trainer_takes_a_clipped_adam_step_and_an_sgd_step_on_the_tables(
        monkeypatch, counted):
    """One epoch of one minibatch from the random offset: the network by the book's Adam on
    gradients clipped at 0.25, the tables by plain SGD at lr 30, unclipped; the free cores
    counted again for the minibatch, as d2l's trainer does."""
    monkeypatch.setattr(d2l, 'free_cores', lambda: counted + 1)  # not the count it found
    pair_contexts, get_recipe_params, init_recipe_state, recipe_cell, smoothed_loss, \
        train_recipe = lab_globals(*lab_functions(
            'pair_contexts', 'get_recipe_params', 'init_recipe_state', 'recipe_cell',
            'smoothed_loss', 'train_recipe'))
    V, text = 5, [0, 1, 2, 3, 4, 0, 1, 2, 4, 3, 1, 0, 2, 3]
    train_recipe.__globals__['vocab_size'] = V
    pair_rows, n_pairs = pair_contexts(text, V)
    cell = recipe_cell(pair_rows, (0, 0, 0, 0))
    mx.random.seed(0)
    params = get_recipe_params(V, n_pairs, CPU, np.arange(1, V + 1), embed=3, hiddens=2)
    before = [p.copy() for p in params]
    random.seed(5)
    offset = random.randrange(6)
    assert len(text) - offset - 1 < 2 * 6  # one window
    random.seed(5)
    dev, scores = [i % V for i in range(0, 3 * 40, 3)], []
    train_recipe(cell, params, text, 1, 0.1, dev, lambda *score: scores.append(score),
                 batch_size=1, num_steps=6, hiddens=2)
    assert OMP.omp_get_max_threads() == counted + 1
    assert scores == [(1, pytest.approx(d2l.evaluate_perplexity(
        cell, params, init_recipe_state, 2, V, CPU, dev, 35), rel=1e-6))]
    X = nd.array([text[offset:offset + 6]])
    Y = nd.array([text[offset + 1:offset + 7]])
    for p in before:
        p.attach_grad()
    with autograd.record():
        outputs, _ = cell(d2l.to_onehot(X, V), init_recipe_state(1, 2, CPU), before)
        loss = smoothed_loss(outputs, Y, 0.1)
    loss.backward()
    grads = [p.grad.asnumpy() for p in before]
    norm = math.sqrt(sum((g ** 2).sum() for g in grads[:-2]))
    assert norm > 0.25  # the clipping matters
    for p, g, q in zip(before[:-2], grads[:-2], params[:-2]):
        g = g * 0.25 / norm
        v, s = 0.1 * g, 0.001 * g ** 2
        step = 2e-3 * (v / 0.1) / (np.sqrt(s / 0.001) + 1e-6)
        assert q.asnumpy() == pytest.approx(p.asnumpy() - step, abs=1e-6)
    for p, g, q in zip(before[-2:], grads[-2:], params[-2:]):
        assert np.abs(g).max() > 0
        assert q.asnumpy() == pytest.approx(p.asnumpy() - 30 * g, abs=1e-5)
    monkeypatch.delitem(d2l.env, 'MXNET_ENGINE_TYPE')  # the user's engine: nothing counted
    monkeypatch.setattr(d2l, 'free_cores', lambda: counted + 2)
    train_recipe(cell, params, text, 1, 0.1, dev, lambda *score: None, batch_size=1,
                 num_steps=6, hiddens=2)
    assert OMP.omp_get_max_threads() == counted + 1


LAB_CHOICE_CELLS = ['tried = {}', 'floors = {', 'dev_counts = {']  # the cells that choose


def lab_choices(corpus, n_val, vocab_size):
    """The lab's own choice cells run on corpus (indices, the last n_val held out), small: each
    choice, with the dev scores it was made on."""
    got = lab_globals(*lab_functions(
        'kneser_ney', 'scored_targets', 'count_log_probs', 'network_log_probs', 'pair_contexts',
        'get_recipe_params', 'init_recipe_state', 'recipe_cell', 'smoothed_loss', 'floored',
        'train_recipe'))[0].__globals__
    got.update(mx=mx, vocab_size=vocab_size, seed=0, recipe_epochs=2, smoothings=(0.1, 0.2),
               train=corpus[:-n_val], val=corpus[-n_val:], n_val=n_val,
               text=''.join(chr(0x4e00 + i) for i in corpus))
    for marker in LAB_CHOICE_CELLS:
        (cell,) = [c for c in lab_cells() if marker in ''.join(c['source'])]
        exec(''.join(cell['source']), got)
    return {
        'label smoothing, epoch': ((got['smoothing'], got['best_epoch']),
                                   {s: tried[:2] for s, tried in got['tried'].items()}),
        'floor': (got['eps'], got['floors']),
        'count order': (got['order'], {k: lp.tolist() for k, lp in got['dev_counts'].items()}),
        'dynamic rate': (got['dynamic_lr'],
                         {lr: lp.tolist() for lr, lp in got['dev_adaptive'].items()}),
        'static weight': (got['w_static'], got['dev_static'].tolist()),
        'adaptive weight': (got['w_adaptive'], got['dev_counts_adaptive'].tolist()),
    }


def test_the_labs_choices_are_made_on_dev_and_never_read_the_held_out_text(monkeypatch):
    """Label smoothing, epoch, floor, count order, dynamic rate and mixture weights, from the
    lab's own cells: the same, scores included, with other held-out text (over the same
    vocabulary, the whole corpus's as in the chapter); other scores with another dev split.
    The thread count stays as it is: the recipe's nd.dot (OpenBLAS) and sums round otherwise
    with another count, so the scores' last bits would follow the load, not the text."""
    monkeypatch.delitem(d2l.env, 'OMP_NUM_THREADS', raising=False)  # as if it were the user's
    rng, V = random.Random(0), 30
    words = [[rng.randrange(1, V) for _ in range(rng.randint(2, 5))] for _ in range(40)]
    corpus = []
    while len(corpus) < 3300:  # verses of words, 0 between: something to learn and repeat
        corpus += rng.choice(words) + [0]
    corpus = corpus[:3300]
    n_val = 300  # dev is the last tenth of the other 3000: as long, so any swap computes
    other = [rng.randrange(V) for _ in range(n_val)]
    chosen = lab_choices(corpus, n_val, V)
    on_other_held_out = lab_choices(corpus[:-n_val] + other, n_val, V)
    for choice, made in chosen.items():
        assert on_other_held_out[choice] == made, choice
    on_other_dev = lab_choices(corpus[:-2 * n_val] + other + corpus[-n_val:], n_val, V)
    for choice, (_, scores) in chosen.items():
        assert on_other_dev[choice][1] != scores, choice


def test_the_labs_recipe_starts_from_scaled_weights_a_remembering_forget_gate_and_unigrams():
    (get_recipe_params,) = lab_globals(*lab_functions('get_recipe_params'))
    mx.random.seed(0)
    unigram = np.arange(1, 51)
    params = get_recipe_params(50, 3, CPU, unigram, embed=200, hiddens=100)
    E, W_xi, W_hi, b_i, W_xf, W_hf, b_f = params[:7]
    assert E.shape == (50, 200) and W_xi.shape == (200, 100) and W_hi.shape == (100, 100)
    assert W_xi.asnumpy().std() == pytest.approx(1 / math.sqrt(200), rel=0.05)
    assert W_hi.asnumpy().std() == pytest.approx(1 / math.sqrt(100), rel=0.05)
    assert (b_f.asnumpy() == 1).all() and (b_i.asnumpy() == 0).all()
    P, b_q = params[13:15]
    assert P.shape == (100, 200)
    assert E.asnumpy().std() == pytest.approx(0.1, rel=0.05)
    assert P.asnumpy().std() == pytest.approx(1 / math.sqrt(100), rel=0.05)
    assert b_q.asnumpy() == pytest.approx(np.log(unigram / unigram.sum()), rel=1e-5)


def test_the_readme_quotes_the_numbers_of_the_labs_saved_run():
    """The lab's three result lines, read as a script would from its saved outputs, are the
    README's and held-out.md's numbers."""
    saved = ''.join(o.get('text', '') if isinstance(o.get('text', ''), str)
                    else ''.join(o['text']) for c in lab_cells() for o in c.get('outputs', []))
    docs = [(HERE / name).read_text(encoding='utf-8')
            for name in ['README.md', 'docs/held-out.md']]
    for line in ['recipe held-out perplexity', 'adaptive count model, held out',
                 'adaptive network, held out']:
        (value,) = re.findall(r'^%s: (\d+\.\d)$' % line, saved, re.M)
        whole = r'(?<!\d)(?<!\d\.)%s(?!\d)(?!\.\d)' % re.escape(value)  # not 26.8 in 126.8
        assert all(re.search(whole, doc) for doc in docs), line
