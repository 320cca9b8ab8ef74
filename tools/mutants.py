"""One-line edits of charrnn.py and of the lab's functions (docs/lab.ipynb) that change what they
compute: the test suite must fail on each.

usage, from the project's root:  python tools/mutants.py [NAME ...]
Each edit is made in a copy of the project in a new temporary folder, where the suite runs with
`-x -m "not slow"` (the first failing test ends it; the two slow tests, a numpy 2 environment and
the lab's notebook, are left out). The suite runs once unedited first: if it fails there, nothing
is counted. Prints each edit as caught (with the test that failed first) or MISSED, then the
count; the exit status is the number missed. NAME runs only the edits whose name contains it.
About 25 minutes for all of them on 2 cores.
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# name: (a line's text in charrnn.py, found exactly once; what it becomes)
EDITS = {
    'vocabulary order': (
        'idx_to_char = sorted(set(text))',
        'idx_to_char = sorted(set(text))[::-1]'),
    'corpus from the 2nd character': (
        '[char_to_idx[c] for c in text],',
        '[char_to_idx[c] for c in text[1:]],'),
    'line breaks dropped': (
        ".replace('\\n', ' ')[:num_chars]",
        ".replace('\\n', '')[:num_chars]"),
    'one character fewer': (
        "' ')[:num_chars]",
        "' ')[:num_chars and num_chars - 1]"),
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
        'Hs, dim=0), drop_probs[1]), W_hq, b_q, len(Hs)), (H,)\n\n\ndef gru',
        'Hs, dim=0), drop_probs[0]), W_hq, b_q, len(Hs)), (H,)\n\n\ndef gru'),
    'rnn: first state returned': (
        'len(Hs)), (H,)\n\n\ndef gru',
        'len(Hs)), (Hs[0],)\n\n\ndef gru'),
    'gru: Z and 1 - Z swapped': (
        'H = Z * H + (1 - Z) * H_tilda',
        'H = (1 - Z) * H + Z * H_tilda'),
    'gru: no reset gate': (
        'hh(R * H)',
        'hh(H)'),
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
    'longest copy: two at a time': (
        'written[i:i + len(best) + 1] in text',
        'written[i:i + len(best) + 2] in text'),
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
        'wds=[wd] * n',
        'wds=[0] * n'),
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
        "longest_copy(written[len(prefix):].replace(' ', ''), text)",
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
        'np.finfo(np.float32).tiny <= x < math.inf',
        '0 < x < math.inf'),
    'flags: temperature ignored': (
        'temperature=args.temperature',
        'temperature=0'),
    'threads: one more than free cores': (
        'str(max(1, min(cores, cpus - others)))',
        'str(max(1, min(cores, cpus - others + 1)))'),
    'text: blank accepted': (
        'if not text.strip():',
        'if not text:'),
    'perplexity: no window accepted': (
        '    if windows < 1:\n',
        '    if windows < 0:\n'),
    'stderr closed: interrupted on stdout': (
        'if sys.stderr:  # closed',
        'if True:  # closed'),
    'gru: output dropout from inputs': (
        'Hs, dim=0), drop_probs[1]), W_hq, b_q, len(Hs)), (H,)\n\n\ndef lstm',
        'Hs, dim=0), drop_probs[0]), W_hq, b_q, len(Hs)), (H,)\n\n\ndef lstm'),
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
    'flags: infinite weight decay': (
        '0 <= args.weight_decay < math.inf',
        '0 <= args.weight_decay'),
    'flags: negative dropout': (
        '0 <= args.dropout < 1',
        'args.dropout < 1'),
    'threads: this process counted': (
        ".split('/')[0]) - 1",
        ".split('/')[0])"),
    'threads: SMT read backwards': (
        '(1 if SMT.exists()',
        '(2 if SMT.exists()'),
    'text: EOFError uncaught': (
        'RuntimeError, NotImplementedError, EOFError,',
        'RuntimeError, NotImplementedError,'),
    'text: a blank cut named as a blank file': (
        "'its first %d characters' % num_chars if num_chars",
        "'its first %d characters' % num_chars if None"),
    'interrupt: one that MXNet made a TypeError': (
        'if KeyboardInterrupt in (type(e), type(e.__context__)):',
        'if KeyboardInterrupt in (type(e),):'),
}

# the same, of the text of one code cell of docs/lab.ipynb
LAB_EDITS = {
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
        '            d2l.sgd(params, lr, 1)\n            state',
        '            d2l.sgd(params, lr, 35)\n            state'),
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


def run(name, old, new, where='charrnn.py'):
    """'caught by TEST' or 'MISSED'; the edit made in a copy of the project."""
    text = (ROOT / where).read_text(encoding='utf-8') if old is None else edited(ROOT / where,
                                                                                 old, new)
    if text is None:
        sys.exit('%s: %r is not in %s once' % (name, old, where))
    with tempfile.TemporaryDirectory() as folder:
        copy = pathlib.Path(folder) / 'charrnn'
        shutil.copytree(ROOT, copy, symlinks=True,
                        ignore=shutil.ignore_patterns('.git', '.venv*', '__pycache__', '*.part'))
        (copy / where).write_text(text, encoding='utf-8')
        p = subprocess.run([sys.executable, '-m', 'pytest', '-x', '-q', '-m', 'not slow',
                            '-p', 'no:cacheprovider'], cwd=copy, capture_output=True, text=True)
    failed = re.search(r'^FAILED (\S+)', p.stdout, re.M)
    if p.returncode == 0:
        return 'MISSED'
    return 'caught by %s' % (failed.group(1).split('::')[1] if failed else 'exit %d' % p.returncode)


if __name__ == '__main__':
    if run('no edit', None, None) != 'MISSED':  # a suite that fails already catches nothing
        sys.exit('the suite fails without an edit: fix that first')
    edits = dict(EDITS, **{name: edit + ('docs/lab.ipynb',) for name, edit in LAB_EDITS.items()})
    chosen = [n for n in edits if not sys.argv[1:] or any(a in n for a in sys.argv[1:])]
    missed = 0
    for name in chosen:
        verdict = run(name, *edits[name])
        missed += verdict == 'MISSED'
        print('%-40s %s' % (name, verdict), flush=True)
    print('%d of %d edits caught' % (len(chosen) - missed, len(chosen)))
    sys.exit(missed)
