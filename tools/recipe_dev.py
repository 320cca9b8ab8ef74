"""One setting of the lab's second recipe, trained and scored on the dev split only.

    python tools/recipe_dev.py --smoothing 0.2 --epochs 60

The lab's own functions (docs/lab.ipynb, read from its cells), on its split: the last tenth of
the text held out and never read here; the last tenth of the rest is the dev text, the model
trained on what comes before it. Prints the dev perplexity after each epoch, then the best
epoch's with each output floor. The lab's table of tries on dev comes from these runs.
"""
import argparse
import ast
import collections
import inspect
import json
import math
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
import charrnn as d2l  # noqa: E402 (first of MXNet and numpy: it counts the free cores)
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, nd  # noqa: E402


def lab_functions(names, namespace):
    """The lab's functions of these names, defined in namespace as its cells write them."""
    with open(os.path.join(HERE, 'docs', 'lab.ipynb'), encoding='utf-8') as f:
        cells = [c for c in json.load(f)['cells'] if c['cell_type'] == 'code']
    for cell in cells:
        tree = ast.parse(''.join(cell['source']))
        tree.body = [node for node in tree.body
                     if isinstance(node, ast.FunctionDef) and node.name in names]
        exec(compile(tree, 'lab.ipynb', 'exec'), namespace)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--smoothing', type=float, default=0.2,
                        help='label smoothing α, 0 <= α < 1 (default 0.2, the lab\'s choice)')
    parser.add_argument('--epochs', type=int, default=31,
                        help='epochs on the fit part, at least 1 (default 31, the lab\'s)')
    parser.add_argument('--embed', type=int, default=200, help='size of the embedding E (200)')
    parser.add_argument('--hiddens', type=int, default=256, help='LSTM units (256)')
    parser.add_argument('--drop', type=float, nargs=4, default=[0.3, 0.5, 0.5, 0.6],
                        help="dropout: E's rows, LSTM inputs, outputs, W_h* (DropConnect); "
                        'each 0 <= p < 1 (default 0.3 0.5 0.5 0.6)')
    parser.add_argument('--lr', type=float, default=2e-3, help="Adam's learning rate (0.002)")
    parser.add_argument('--seed', type=int, default=0, help='the seed of weights and order (0)')
    parser.add_argument('--corpus-chars', type=int, default=0,
                        help='characters of the lyrics used (default 0: all of them)')
    parser.add_argument('--dynamic', type=float, nargs='*', default=[],
                        help='learning rates of dynamic evaluation to try, with the floor 0.05 '
                        '(0: no step, the static score)')
    args = parser.parse_args(argv)
    float32 = np.finfo(np.float32)  # MXNet's: it makes a smaller rate 0, refuses a larger one
    rates = ("between float32's least normal %.5g and its largest %.5g"
             % (float32.tiny, float32.max))
    for name in ['epochs', 'embed', 'hiddens']:
        if getattr(args, name) < 1:
            parser.error('--%s must be 1 or more' % name)
    for bad, message in [
            (not 0 <= args.smoothing < 1, '--smoothing must be at least 0 and below 1'),
            (not all(0 <= p < 1 for p in args.drop), '--drop: each must be at least 0 and below 1'),
            (not float32.tiny <= args.lr <= float32.max, '--lr must be ' + rates),
            (not all(lr == 0 or float32.tiny <= lr <= float32.max for lr in args.dynamic),
             '--dynamic: each rate must be 0 or ' + rates),
            (args.corpus_chars < 0, '--corpus-chars must be 0 (all) or more')]:
        if bad:
            parser.error(message)
    namespace = dict(collections=collections, math=math, np=np, nd=nd, d2l=d2l, mx=mx,
                     autograd=autograd, ctx=d2l.ctx, random=random, time=time)
    lab_functions({'pair_contexts', 'get_recipe_params', 'init_recipe_state', 'recipe_cell',
                   'smoothed_loss', 'floored', 'train_recipe', 'network_log_probs'}, namespace)
    corpus, _, _, vocab_size = d2l.load_data_jay_lyrics(None, args.corpus_chars or None)
    namespace['vocab_size'] = vocab_size
    train = corpus[:-(len(corpus) // 10)]
    fit, dev = train[:-(len(train) // 10)], train[-(len(train) // 10):]
    ns = argparse.Namespace(**namespace)
    defaults = inspect.signature(ns.train_recipe).parameters
    batch_size, num_steps = defaults['batch_size'].default, defaults['num_steps'].default
    need = batch_size * (num_steps + 1) + num_steps - 1  # a minibatch from the latest offset
    if len(fit) < need:
        parser.error('--corpus-chars %d leaves %d characters to train on, fewer than a minibatch '
                     'of %d windows of %d needs (%d)'
                     % (args.corpus_chars, len(fit), batch_size, num_steps, need))
    if max(vocab_size, args.hiddens) * max(vocab_size, args.embed, args.hiddens) >= 2 ** 31:
        parser.error('--embed %d, --hiddens %d: an array of the model (E, W_h*, P or P Eᵀ) would '
                     "hold 2³¹ numbers or more, past MXNet's limit" % (args.embed, args.hiddens))
    pair_rows, n_pairs = ns.pair_contexts(fit, vocab_size)
    random.seed(args.seed)
    mx.random.seed(args.seed)
    params = ns.get_recipe_params(vocab_size, n_pairs, d2l.ctx,
                                  np.bincount(fit, minlength=vocab_size) + 0.5, args.embed,
                                  args.hiddens)
    cell = ns.recipe_cell(pair_rows, tuple(args.drop))
    best = [math.inf, 0, None]

    def on_epoch(epoch, score):
        print('epoch %d, dev perplexity %.1f' % (epoch, score), flush=True)
        if score < best[0]:
            best[:] = [score, epoch, [p.copy() for p in params]]

    ns.train_recipe(cell, params, fit, args.epochs, args.smoothing, dev, on_epoch, lr=args.lr,
                    hiddens=args.hiddens)
    if best[2] is None:  # inf after every epoch: the loss overflowed
        sys.exit('recipe_dev.py: error: the dev perplexity was inf after every epoch: the model '
                 'diverged; lower --lr (%g)' % args.lr)
    floors = ', '.join('%g: %.1f' % (eps, d2l.evaluate_perplexity(
        ns.floored(cell, eps), best[2], ns.init_recipe_state, args.hiddens, vocab_size, d2l.ctx,
        dev, 35)) for eps in (0.05, 0.1, 0.2))
    print('%s: best dev perplexity %.1f at epoch %d; with a floor %s'
          % (' '.join(argv), best[0], best[1], floors))
    for lr in args.dynamic:
        log_probs = ns.network_log_probs(ns.floored(cell, 0.05), best[2], ns.init_recipe_state,
                                         args.hiddens, vocab_size, d2l.ctx, dev, 35, lr)
        print('dynamic evaluation at learning rate %g: dev perplexity %.1f'
              % (lr, math.exp(-log_probs.mean())))


if __name__ == '__main__':
    main()
