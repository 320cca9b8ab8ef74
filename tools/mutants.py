"""One-line edits of charrnn.py and of the lab's functions (docs/lab.ipynb) that change what they
compute: the test suite must fail on each.

usage, from the project's root:  python tools/mutants.py [NAME ...]
Each edit is made in a copy of the project in a new temporary folder, where the suite runs with
`-x -m "not slow"` (the first failing test ends it; the two slow tests, a numpy 2 environment and
the lab's notebook, are left out). The suite runs once unedited first: if it fails there, nothing
is counted; three times its time limits every later run (past it, the run's whole process group
is killed). An edit is caught only when a test fails on it (pytest's status 1, a failed test
named) and that test, run again on the unedited copy, passes. A run that times out, crashes (a
signal, another status), or stops at a collection error or an error outside a test's body, and
a test that fails unedited too (flaky), are printed as such and not counted as caught. Prints
each edit as caught (with the test that failed first) or why not, then the count; the exit
status is the number not caught. NAME runs only the edits whose name contains it.
About 25 minutes for all of them on 2 cores, before each catch's test was run again unedited
(a few seconds more an edit; the whole list not timed since).
"""
import collections
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# name: (a line's text in charrnn.py, found exactly once; what it becomes)
EDITS = {
    'vocabulary order': (
        'idx_to_char = sorted(set(text))',
        'idx_to_char = sorted(set(text))[::-1]'),
    'corpus from the 2nd character': (
        '[char_to_idx[c] for c in text],',
        '[char_to_idx[c] for c in text[1:]],'),
    'line breaks kept': (
        ".translate(LINE_BREAKS)[",
        "["),
    'a line break of Python missed': (
        "\\x1e\\x85",
        "\\x1e"),
    'one character fewer': (
        "[:num_chars or None]",
        "[:num_chars - 1 if num_chars else None]"),
    '0 characters is none': (
        "[:num_chars or None]",
        "[:num_chars]"),
    'byte-order mark kept': (
        "raw.decode('utf-8-sig')",
        "raw.decode('utf-8')"),
    'last .txt of a zip': (
        'raw = z.read(names[0])',
        'raw = z.read(names[-1])'),
    'checksum ignored': (
        '!= sha1:',
        '!= sha1 and False:'),
    'random: one window more': (
        'np.arange((len(corpus) - 1) // num_steps)',
        'np.arange(len(corpus) // num_steps)'),
    'random: not shuffled': (
        'random.shuffle(starts)',
        'starts.sort()'),
    'random: Y not shifted': (
        'corpus[window + 1]',
        'corpus[window]'),
    'random: a batch fewer': (
        'range(len(starts) // batch_size)',
        'range(len(starts) // batch_size - 1)'),
    'random: windows overlap': (
        '* num_steps\n    random.shuffle',
        '* (num_steps - 1)\n    random.shuffle'),
    'consecutive: one batch more': (
        '(batch_len - 1) // num_steps * num_steps',
        'batch_len // num_steps * num_steps'),
    'consecutive: a batch fewer': (
        '(batch_len - 1) // num_steps * num_steps',
        '(batch_len - 1) // num_steps * num_steps - num_steps'),
    'consecutive: rows interleaved': (
        '.reshape((batch_size, -1))',
        '.reshape((-1, batch_size)).T'),
    'weights scale 0.1': (
        'scale=0.01',
        'scale=0.1'),
    'biases one': (
        'else nd.zeros(s, ctx=ctx)',
        'else nd.ones(s, ctx=ctx)'),
    'state ones': (
        'tuple(nd.zeros((batch_size, num_hiddens)',
        'tuple(nd.ones((batch_size, num_hiddens)'),
    'W_hh not transposed': (
        'W_T = W.T',
        'W_T = W'),
    'affine: steps split wrongly': (
        'axis=0)) if num_steps > 1',
        'axis=1)) if num_steps > 1'),
    'dropout keeps drop_prob': (
        '< 1 - drop_prob',
        '< drop_prob'),
    'dropout not rescaled': (
        'return mask * X / (1 - drop_prob)',
        'return mask * X'),
    'dropout at prediction': (
        'if drop_prob and autograd.is_training() else X',
        'if drop_prob else X'),
    'rnn: no recurrence': (
        'H = phi(XW_t + H_W_hh(H))',
        'H = phi(XW_t)'),
    'rnn: output dropout from inputs': (
        'Hs, dim=0), drop_probs[1]), W_hq, b_q, len(Hs)), (H,)\n\n\ndef lstm',
        'Hs, dim=0), drop_probs[0]), W_hq, b_q, len(Hs)), (H,)\n\n\ndef lstm'),
    'rnn: first state returned': (
        'len(Hs)), (H,)\n\n\ndef lstm',
        'len(Hs)), (Hs[0],)\n\n\ndef lstm'),
    'lstm: gates swapped': (
        'C = F * C + I * C_tilda',
        'C = I * C + F * C_tilda'),
    'lstm: candidate as memory': (
        'len(Hs)), (H, C)',
        'len(Hs)), (H, C_tilda)'),
    'lstm: output gate unused': (
        'H = O * nd.tanh(C)',
        'H = nd.tanh(C)'),
    'predict: first output read': (
        'next_idx = Y[-1].argmax(axis=1)',
        'next_idx = Y[0].argmax(axis=1)'),
    'predict: state dropped': (
        'Y, state = rnn(to_onehot(X, vocab_size), state, params)',
        'Y, _ = rnn(to_onehot(X, vocab_size), state, params)'),
    'predict: whole text fed again': (
        'X = nd.array([output[-1:]], ctx=ctx)',
        'X = nd.array([output], ctx=ctx)'),
    'predict: sampled from the first': (
        'nd.softmax(Y[-1], temperature=T)',
        'nd.softmax(Y[0], temperature=T)'),
    'predict: temperature ignored': (
        'nd.softmax(Y[-1], temperature=T)',
        'nd.softmax(Y[-1])'),
    'longest copy: one character short': (
        'return written[i:i + size]',
        'return written[i:i + size - 1]'),
    'longest copy: popular characters skipped': (
        'autojunk=False',
        'autojunk=True'),
    'clipping: small gradients scaled up': (
        'scale = nd.minimum(theta / norm, 1)',
        'scale = theta / norm'),
    'clipping: norm squared': (
        '.sum().sqrt()',
        '.sum()'),
    'loss: targets by row': (
        'Y.T.reshape((-1,))',
        'Y.reshape((-1,))'),
    'loss: a sum': (
        ')), Y.T.reshape((-1,))).mean()',
        ')), Y.T.reshape((-1,))).sum()'),
    'perplexity: state reset each window': (
        'outputs, state = rnn(to_onehot(X, vocab_size), state, params)\n        loss_sum += seq'
        'uence_loss(outputs, Y)\n    mean_loss',
        'outputs, _ = rnn(to_onehot(X, vocab_size), state, params)\n        loss_sum += sequenc'
        'e_loss(outputs, Y)\n    mean_loss'),
    'perplexity: one window too many': (
        'loss_sum.asscalar() / windows',
        'loss_sum.asscalar() / (windows + 1)'),
    'sgd: batch size ignored': (
        'rescale_grad=1 / batch_size',
        'rescale_grad=1'),
    'sgd: no weight decay': (
        'lr=lr, wd=wd,',
        'lr=lr, wd=0,'),
    'adam: step count kept': (
        "hyperparams['t'] += 1",
        "hyperparams['t'] += 0"),
    'adam: decay of the gradient': (
        '(v_bias_corr / (s_bias_corr.sqrt() + eps) + wd * p)',
        '(v_bias_corr / (s_bias_corr.sqrt() + eps) + wd * p.grad)'),
    'trainer: consecutive state reset': (
        'state = tuple(s.detach() for s in state)',
        'state = init_rnn_state(batch_size, num_hiddens, ctx)'),
    'trainer: random state carried': (
        'if is_random_iter:  # 随机采样',
        'if is_random_iter and t == 0:  # 随机采样'),
    'trainer: no clipping': (
        'grad_clipping(params, clipping_theta, ctx)\n',
        'grad_clipping(params, math.inf, ctx)\n'),
    'trainer: sgd divided by batch': (
        'sgd(params, lr, 1, weight_decay)',
        'sgd(params, lr, batch_size, weight_decay)'),
    'trainer: sgd without decay': (
        'sgd(params, lr, 1, weight_decay)',
        'sgd(params, lr, 1)'),
    'trainer: adam without decay': (
        'adam_state[1].update(lr=lr, wd=weight_decay)',
        'adam_state[1].update(lr=lr)'),
    'trainer: adam at its own lr': (
        'adam_state[1].update(lr=lr, wd=weight_decay)',
        'adam_state[1].update(wd=weight_decay)'),
    'trainer: mean over one batch more': (
        'mean_loss = loss_sum.asscalar() / (t + 1)',
        'mean_loss = loss_sum.asscalar() / (t + 2)'),
    'trainer: loss as perplexity': (
        "history['train'].append(math.exp(mean_loss))",
        "history['train'].append(mean_loss)"),
    'trainer: no report at the end': (
        'if epoch % pred_period and epoch < num_epochs:',
        'if epoch % pred_period:'),
    'trainer: report hands the live params': (
        'on_report(epoch, [p.copy() for p in params], history)',
        'on_report(epoch, params, history)'),
    'trainer: minibatch need too small': (
        'need = batch_size * num_steps + 1 if',
        'need = batch_size * num_steps if'),
    'trainer: copies count the prefix': (
        "longest_copy(new.replace(' ', ''), text)",
        "longest_copy(written.replace(' ', ''), text)"),
    'trainer: held-out window check': (
        'len(val_indices) <= num_steps',
        'len(val_indices) < num_steps'),
    'main: held out one more': (
        'n_val = int(len(corpus) * args.val_frac)',
        'n_val = int(len(corpus) * args.val_frac) + 1'),
    'main: no seed for windows': (
        '\n            random.seed(args.seed)',
        '\n            random.seed()'),
    'main: output dropout off': (
        'drop_probs=(args.dropout, args.dropout)',
        'drop_probs=(args.dropout, 0)'),
    'main: adam lr': (
        "{'sgd': 100, 'adam': 0.002}",
        "{'sgd': 100, 'adam': 0.02}"),
    'main: sgd clip': (
        "{'sgd': 0.01, 'adam': 1}",
        "{'sgd': 0.1, 'adam': 1}"),
    'flags: float32 zero accepted': (
        'np.finfo(np.float32).tiny <= x <= np.finfo',
        '0 < x <= np.finfo'),
    "flags: past float32's largest": (
        'x <= np.finfo(np.float32).max',
        'x < math.inf'),
    'flags: temperature ignored': (
        'temperature=args.temperature',
        'temperature=0'),
    'threads: one more than free cores': (
        'cpus - runnable + sum(mine)))',
        'cpus - runnable + sum(mine) + 1))'),
    'text: blank accepted': (
        'if not text.strip():',
        'if not text:'),
    'perplexity: no window accepted': (
        '    if windows < 1:\n',
        '    if windows < 0:\n'),
    'stderr closed: interrupted on stdout': (
        'if sys.stderr:  # closed',
        'if True:  # closed'),
    'lstm: input dropout from outputs': (
        'X = drop(nd.concat(*inputs, dim=0), drop_probs[0])  # all steps: X W_x* + b_*, then sp'
        'lit\n    XI',
        'X = drop(nd.concat(*inputs, dim=0), drop_probs[1])  # all steps: X W_x* + b_*, then sp'
        'lit\n    XI'),
    'threads: left in the environment': (
        '        del os.environ[name]\n',
        '        pass\n'),
    'trainer: state carried across epochs': (
        'if not is_random_iter:  # 相邻采样',
        'if not is_random_iter and epoch == 1:  # 相邻采样'),
    'trainer: divergence at 7000': (
        'if not mean_loss < 700:',
        'if not mean_loss < 7000:'),
    'trainer: first held-out figure reported': (
        "% history['val'][-1][1]",
        "% history['val'][0][1]"),
    'trainer: ETA one epoch more': (
        '(num_epochs - epoch))  # h:mm:ss',
        '(num_epochs - epoch + 1))  # h:mm:ss'),
    'trainer: consecutive need too small': (
        'else batch_size * (num_steps + 1)',
        'else batch_size * num_steps + 1'),
    'flags: only --epochs counted': (
        "for name in ['epochs', 'num_steps', 'batch_size', 'pred_period', 'hiddens']:",
        "for name in ['epochs']:"),
    'flags: negative --corpus-chars': (
        'min(args.corpus_chars, args.pred_len) < 0',
        'args.pred_len < 0'),
    'flags: --val-frac 1': (
        '0 <= args.val_frac < 1',
        '0 <= args.val_frac <= 1'),
    'flags: infinite temperature': (
        '0 <= args.temperature < math.inf',
        '0 <= args.temperature'),
    'flags: weight decay unchecked': (
        'args.clip, args.weight_decay or None]',
        'args.clip]'),
    'flags: negative dropout': (
        '0 <= args.dropout < 1',
        'args.dropout < 1'),
    'threads: this process counted': (
        'cpus - runnable + sum(mine)))',
        'cpus - runnable))'),
    'threads: SMT read backwards': (
        "(1 if read(smt, '1')",
        "(2 if read(smt, '1')"),
    'text: EOFError uncaught': (
        'RuntimeError, NotImplementedError, EOFError,',
        'RuntimeError, NotImplementedError,'),
    'text: a blank cut named as a blank file': (
        "'its first %d characters' % num_chars if num_chars",
        "'its first %d characters' % num_chars if None"),
    'interrupt: one that MXNet made a TypeError': (
        'if KeyboardInterrupt in (type(e), type(e.__context__)):',
        'if KeyboardInterrupt in (type(e),):'),
    'sgd: the first parameter only': (
        'for p in params:  # any number',
        'for p in params[:1]:  # any number'),
    'threads: no quota': (
        "limit[0].isdigit() else cpus",
        "limit[0].isdigit() and False else cpus"),
    'threads: quota rounded down': (
        'math.ceil(int(limit[0]) / int(limit[1]))',
        '(int(limit[0]) // int(limit[1]))'),
    'threads: the load read once in each reading': (
        "max(int(read(proc + '/loadavg').split()[3].split('/')[0]) for _ in range(2))",
        "max(int(read(proc + '/loadavg').split()[3].split('/')[0]) for _ in range(1))"),
    'threads: the lesser of two loads': (
        "runnable = max(int(read(proc + '/loadavg')", "runnable = min(int(read(proc + '/loadavg')"),
    'threads: the load read once, the threads after it': (
        "    while mine != (mine := [read(t, ') S').rsplit(')', 1)[1].split()[0] == 'R' for t in "
        "tasks]):\n        runnable = max(int(read(proc + '/loadavg').split()[3].split('/')[0]) "
        "for _ in range(2))",
        "    runnable = int(read(proc + '/loadavg').split()[3].split('/')[0])\n"
        "    mine = [read(t, ') S').rsplit(')', 1)[1].split()[0] == 'R' for t in tasks]"),
    'threads: the load read once, the threads before it': (
        "    while mine != (mine := [read(t, ') S').rsplit(')', 1)[1].split()[0] == 'R' for t in "
        "tasks]):\n        runnable = max(int(read(proc + '/loadavg').split()[3].split('/')[0]) "
        "for _ in range(2))",
        "    mine = [read(t, ') S').rsplit(')', 1)[1].split()[0] == 'R' for t in tasks]\n"
        "    runnable = int(read(proc + '/loadavg').split()[3].split('/')[0])"),
    'threads: a product by OpenBLAS, whose sums follow the count': (
        'Z = nd.FullyConnected(X, W.T, b, num_hidden=W.shape[1])',
        'Z = nd.dot(X, W) + b'),
    'threads: a thread in disk wait taken as runnable': (
        ".split()[0] == 'R' for t in tasks]", ".split()[0] != 'S' for t in tasks]"),
    'threads: a thread gone meanwhile taken as running': (
        "mine := [read(t, ') S')", "mine := [read(t, ') R')"),
    'threads: at most 2': (
        'MXSetNumOMPThreads(free_cores()))', 'MXSetNumOMPThreads(min(2, free_cores())))'),
    'threads: not counted again each minibatch': (
        'mx.base.check_call(mx.base._LIB.MXSetNumOMPThreads(free_cores()))',
        'pass'),
    'threads: counted again each epoch only': (
        "if 'OMP_NUM_THREADS' in env and 'MXNET_ENGINE_TYPE' in env:",
        "if 'OMP_NUM_THREADS' in env and 'MXNET_ENGINE_TYPE' in env and t == 0:"),
    "threads: the threaded engine, which runs the operators in its own thread": (
        "               MXNET_ENGINE_TYPE='NaiveEngine')",
        "               MXNET_ENGINE_TYPE='ThreadedEnginePerDevice')"),
    'stderr: the engine named at import': (
        '            os.dup2(null.fileno(), 2)\n', '            pass\n'),
    'stderr: left at /dev/null after the import': (
        '        os.dup2(stderr, 2)\n', ''),
    'stderr: its copy left open': (
        '        os.close(stderr)\n', '        pass\n'),
    'stderr: a closed one taken as open': (
        "os.dup(2) if os.path.lexists('/proc/self/fd/2') else None",
        "os.dup(2) if sys.stderr else None"),
    'threads: the synchronous engine on a GPU too': (
        'if mx.context.num_gpus() and env.pop(', 'if False and env.pop('),
    "threads: counted under the user's engine": (
        "if 'OMP_NUM_THREADS' in env and 'MXNET_ENGINE_TYPE' in env:",
        "if 'OMP_NUM_THREADS' in env:"),
    "threads: counted with the user's OMP_NUM_THREADS": (
        "if 'OMP_NUM_THREADS' in env and 'MXNET_ENGINE_TYPE' in env:",
        "if 'MXNET_ENGINE_TYPE' in env:"),
    'trainer: the last step unchecked': (
        'mean_loss = mean_loss if after < 700 else after',
        'mean_loss = mean_loss'),
    'perplexity: NaN as overflow': (
        'return math.inf if mean_loss >= 709 else',
        'return math.inf if not mean_loss < 709 else'),
    'header: 1 epochs': (
        "'' if args.epochs == 1 else 's'",
        "'s'"),
    'header: 2 epochs singular': (
        "'' if args.epochs == 1 else 's'",
        "'' if args.epochs <= 2 else 's'"),
    'trainer: the last step checked in the first epoch': (
        'if epoch == num_epochs:  # losses',
        'if epoch == 1:  # losses'),
    "trainer: the last step's NaN only": (
        'mean_loss if after < 700 else after',
        'mean_loss if after == after else after'),
    'report: line breaks shown blank': (
        'if new.isspace() else written',
        'if not new else written'),
    'messages: a name with a line break': (
        "'%r is not a UTF-8",
        "'%s is not a UTF-8"),
    "random: seeded, not the book's order": (
        'random.shuffle(starts)',
        'random.Random(random.getrandbits(32)).shuffle(starts)'),
}

# the same, of the text of one code cell of docs/lab.ipynb
LAB_EDITS = {
    'lab: gru: Z and 1 - Z swapped': (
        'H = Z * H + (1 - Z) * H_tilda',
        'H = (1 - Z) * H + Z * H_tilda'),
    'lab: gru: no reset gate': (
        'hh(R * H)',
        'hh(H)'),
    'lab: gru: output dropout from inputs': (
        "outputs = d2l.drop(nd.concat(*Hs, dim=0), drop_probs[1])",
        "outputs = d2l.drop(nd.concat(*Hs, dim=0), drop_probs[0])"),
    'lab: counted before scored': (
        '        if j in scored:\n            log_probs.append(math.log(prob(text[j], context)))\n'
        '        if adapt:\n            count(text[j], context)',
        '        if adapt:\n            count(text[j], context)\n'
        '        if j in scored:\n            log_probs.append(math.log(prob(text[j], context)))'),
    "lab: a context's kinds counted again": (
        'types[k][gram[:-1]] += not counts[k][gram]', 'types[k][gram[:-1]] += 1'),
    'lab: lower orders count every n-gram': (
        'if len(text) == k or text[-k - 1:] in seen:', 'if len(text) == k:'),
    'lab: unigram add-0.5 over one character': (
        "(totals[1][''] + 0.5 * vocab_size)", "(totals[1][''] + 0.5)"),
    'lab: dynamic step divided by 35': (
        '            d2l.sgd(params, lr, 1)\n        state',
        '            d2l.sgd(params, lr, 35)\n        state'),
    "lab: dynamic evaluation edits the caller's model": (
        '        params = [p.copy() for p in params]\n', ''),
    'lab: dynamic evaluation with dropout': (
        'with autograd.record(train_mode=False):', 'with autograd.record():'),
    'lab: the carried last character': (
        'before = nd.concat(last, X[:-batch], dim=0)',
        'before = nd.concat(X[:batch], X[:-batch], dim=0)'),
    'lab: the first character carried': ('(H, C, X[-batch:])', '(H, C, X[:batch])'),
    'lab: pairs seen more than twice': ('if n >= min_count', 'if n > min_count'),
    'lab: smoothing over the sum': (
        '- smoothing * log_p.mean(axis=1)', '- smoothing * log_p.sum(axis=1)'),
    "lab: the target's share whole": ('(1 - smoothing) * nll', 'nll'),
    'lab: an n-gram met before itself': (
        '        itself += gram in earlier\n',
        '        earlier.add(gram)\n        itself += gram in earlier\n'),
    'lab: the floor not divided by V': (
        '(1 - eps) * nd.softmax(O) + eps / V', '(1 - eps) * nd.softmax(O) + eps'),
    "lab: recipe: counted under the user's engine": (
        "if 'OMP_NUM_THREADS' in d2l.env and 'MXNET_ENGINE_TYPE' in d2l.env:",
        "if 'OMP_NUM_THREADS' in d2l.env:"),
    'lab: recipe: threads not counted again': (
        'd2l.mx.base.check_call(d2l.mx.base._LIB.MXSetNumOMPThreads(d2l.free_cores()))', 'pass'),
    'lab: tables at half the rate': (
        'd2l.sgd(tables, table_lr, 1)', 'd2l.sgd(tables, table_lr, 2)'),
    'lab: tables clipped': (
        'd2l.grad_clipping(network, clip, ctx)', 'd2l.grad_clipping(params, clip, ctx)'),
    'lab: no random offset': (
        'offset = random.randrange(num_steps)', 'offset = random.randrange(num_steps) * 0'),
    'lab: bigram table of the character before': (
        'nd.Embedding(X, A, V, V)', 'nd.Embedding(before, A, V, V)'),
    'lab: weights scaled by fan-out': (
        'p * (100 / math.sqrt(p.shape[0]))', 'p * (100 / math.sqrt(p.shape[1]))'),
    "lab: the input gate's bias at 1": ('lstm[5][:] = 1', 'lstm[4][:] = 1'),
    'lab: the epoch chosen on the training text': (
        'vocab_size,\n                                            ctx, dev, 35)',
        'vocab_size,\n                                            ctx, indices, 35)'),
    "lab: the projection scaled by E's size": (
        'scale=1 / math.sqrt(hiddens)', 'scale=1 / math.sqrt(embed)'),
    'lab: the embedding ten times larger': (
        'E = nd.random.normal(scale=0.1,', 'E = nd.random.normal(scale=1.0,'),
    # every choice made on dev: each one made on the held-out text instead
    'lab: dev is the held-out text': (
        'fit, dev = train[:-n_dev], train[-n_dev:]', 'fit, dev = train[:-n_dev], val'),
    'lab: smoothing and epoch chosen on the held-out text': (
        'recipe_epochs, smoothing, dev, keep_best)', 'recipe_epochs, smoothing, val, keep_best)'),
    'lab: floor chosen on the held-out text': (
        'vocab_size, ctx, dev, 35)\n          for eps',
        'vocab_size, ctx, val, 35)\n          for eps'),
    'lab: count order chosen on the held-out text': (
        'dev_counts = {order: count_log_probs(fit_text, dev_text,',
        'dev_counts = {order: count_log_probs(text[:-n_val], text[-n_val:],'),
    'lab: dynamic rate chosen on the held-out text': (
        'ctx, dev, 35, lr) for lr in', 'ctx, val, 35, lr) for lr in'),
    'lab: static mixture weight chosen on the held-out text': (
        'init_recipe_state, 256, vocab_size, ctx, dev,\n',
        'init_recipe_state, 256, vocab_size, ctx, val,\n'),
    'lab: adaptive mixture weight chosen on the held-out text': (
        'dev_counts_adaptive = count_log_probs(fit_text, dev_text,',
        'dev_counts_adaptive = count_log_probs(text[:-n_val], text[-n_val:],'),
}


def edited(path, old, new):
    """path's text with old made new, once; in a notebook, within a code cell's text."""
    text = path.read_text(encoding='utf-8')
    if path.suffix != '.ipynb':
        return text.replace(old, new) if text.count(old) == 1 else None
    notebook = json.loads(text)
    cells = [c for c in notebook['cells']
             if c['cell_type'] == 'code' and old in ''.join(c['source'])]
    if len(cells) != 1 or ''.join(cells[0]['source']).count(old) != 1:
        return None
    cells[0]['source'] = ''.join(cells[0]['source']).replace(old, new).splitlines(True)
    return json.dumps(notebook, ensure_ascii=False)


def copy_of(root, folder):
    """A copy of the project at root in folder, without git's files and caches."""
    copy = pathlib.Path(folder) / 'charrnn'
    shutil.copytree(root, copy, symlinks=True,
                    ignore=shutil.ignore_patterns('.git', '.venv*', '__pycache__', '*.part'))
    return copy


SUITE = ['-x', '-m', 'not slow']


def pytest(folder, args, limit):
    """(exit status, output) of pytest run in folder; (None, '') past limit seconds, when its
    process group, the tests' own processes included, is killed."""
    p = subprocess.Popen([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *args],
                         cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True,  # its own group, for killpg
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'))  # no stale .pyc
    try:
        output = p.communicate(timeout=limit)[0]
        return p.returncode, output
    except subprocess.TimeoutExpired:
        return None, ''
    finally:
        if p.poll() is None:  # past the limit, or this tool interrupted: nothing left running
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            p.stdout.close()


NODE = r'(\S+?(?:\[.*?\])?)(?: - .*)?$'  # a test's id, [its parameters] (spaces, ' - ' too)


def outcome(status, output):
    """What a run of pytest says: ('passed', ''), ('failed', the first failed test's id), or why
    no test failed: ('timed out', ''), ('a collection error in', file), ('an error outside the
    body of', test) (a fixture's setup or teardown), ('crashed with', 'signal N' or 'exit N')."""
    if status is None:
        return 'timed out', ''
    if status == 0:
        return 'passed', ''
    failed = re.search(r'^FAILED %s' % NODE, output, re.M)
    if status == 1 and failed:
        return 'failed', failed.group(1)
    error = re.search(r'^ERROR %s' % NODE, output, re.M)
    if error:
        where = error.group(1)
        return ('an error outside the body of' if '::' in where else 'a collection error in'), where
    return 'crashed with', 'signal %d' % -status if status < 0 else 'exit %d' % status


def verdict(first, rerun=None):
    """(caught, words): the edit is caught when a test failed on it (first, outcome's) and
    passes on the unedited code (rerun, that test's outcome there)."""
    kind, where = first
    if kind == 'passed':
        return False, 'MISSED'
    if kind != 'failed':
        return False, ('NOT CAUGHT: %s %s' % (kind, where)).strip()
    test = where.split('::', 1)[-1]
    if rerun[0] == 'passed':
        return True, 'caught by %s' % test
    if rerun[0] == 'failed':
        return False, 'FLAKY: %s fails unedited too' % test
    return False, ('NOT CAUGHT: %s failed, then unedited %s %s' % (test, *rerun)).strip()


def run(old, new, where, limit, root=ROOT):
    """verdict's (caught, words) for the suite on a copy of root with old made new in where."""
    with tempfile.TemporaryDirectory() as folder:
        copy = copy_of(root, folder)
        (copy / where).write_text(edited(root / where, old, new), encoding='utf-8')
        first = outcome(*pytest(copy, SUITE, limit))
        if first[0] != 'failed':
            return verdict(first)
        shutil.copyfile(root / where, copy / where)
        return verdict(first, outcome(*pytest(copy, [first[1]], limit)))


if __name__ == '__main__':
    edits = dict({name: edit + ('charrnn.py',) for name, edit in EDITS.items()},
                 **{name: edit + ('docs/lab.ipynb',) for name, edit in LAB_EDITS.items()})
    chosen = [n for n in edits if not sys.argv[1:] or any(a in n for a in sys.argv[1:])]
    for name in chosen:
        old, new, where = edits[name]
        if edited(ROOT / where, old, new) is None:
            sys.exit('%s: %r is not in %s once' % (name, old, where))
    with tempfile.TemporaryDirectory() as folder:
        start = time.time()
        unedited = outcome(*pytest(copy_of(ROOT, folder), SUITE, 3600))
    if unedited[0] != 'passed':  # a suite that fails already catches nothing
        sys.exit('the suite fails without an edit (%s %s): fix that first' % unedited)
    limit = 3 * (time.time() - start)
    print('the unedited suite passed in %.0f s; each run is limited to %.0f s'
          % (limit / 3, limit), flush=True)
    not_caught = collections.Counter()
    for name in chosen:
        caught, words = run(*edits[name], limit)
        if not caught:
            not_caught[words.split(':')[0]] += 1
        print('%-40s %s' % (name, words), flush=True)
    print('%d of %d edits caught%s' % (
        len(chosen) - sum(not_caught.values()), len(chosen),
        ''.join('; %s %d' % kind for kind in sorted(not_caught.items()))))
    sys.exit(sum(not_caught.values()))
