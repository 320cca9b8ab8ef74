"""The seed notebook's character RNN, trained the notebook's way: the baseline for bench/speed.py.

MXNet NDArray, one-hot inputs per step, a ReLU RNN with one nd.dot per product and step, the
loss as gluon's SoftmaxCrossEntropyLoss(...).mean(), clipping by a Python loop over the gradients
and SGD; random sampling, batch 32, 35 steps, 256 hidden units, lr 100, clipping 0.01. The
helpers the notebook imports from gluonbook (the data, the random sampler, sgd) behave as there.
On the CPU (the notebook takes a GPU when it has one).

usage: python notebook_rnn.py DATA_ZIP EPOCHS
prints, after training, one line with the last epoch's perplexity.
"""
import math
import random
import sys
import zipfile

import mxnet as mx
from mxnet import autograd, nd
from mxnet.gluon import loss as gloss

NUM_HIDDENS, BATCH_SIZE, NUM_STEPS, LR, CLIPPING_THETA = 256, 32, 35, 1e2, 1e-2
ctx = mx.cpu()


def load_data_jay_lyrics(path):
    with zipfile.ZipFile(path) as archive:
        text = archive.read('jaychou_lyrics.txt').decode('utf-8')
    text = text.replace('\n', ' ').replace('\r', ' ')[:10000]
    idx_to_char = list(set(text))
    char_to_idx = {char: i for i, char in enumerate(idx_to_char)}
    return [char_to_idx[char] for char in text], len(idx_to_char)


def data_iter_random(corpus_indices, batch_size, num_steps):
    num_examples = (len(corpus_indices) - 1) // num_steps
    example_indices = list(range(num_examples))
    random.shuffle(example_indices)
    for i in range(0, num_examples // batch_size * batch_size, batch_size):
        starts = [j * num_steps for j in example_indices[i:i + batch_size]]
        X = nd.array([corpus_indices[s:s + num_steps] for s in starts], ctx=ctx)
        Y = nd.array([corpus_indices[s + 1:s + 1 + num_steps] for s in starts], ctx=ctx)
        yield X, Y


def one_hot_encoder(X, size):
    return [nd.one_hot(x, size) for x in X.T]


def get_params(vocab_size):
    def normal(shape):
        return nd.random.normal(scale=0.01, shape=shape, ctx=ctx)

    params = [normal((vocab_size, NUM_HIDDENS)), normal((NUM_HIDDENS, NUM_HIDDENS)),
              nd.zeros(NUM_HIDDENS, ctx=ctx), normal((NUM_HIDDENS, vocab_size)),
              nd.zeros(vocab_size, ctx=ctx)]
    for param in params:
        param.attach_grad()
    return params


def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = nd.relu(nd.dot(X, W_xh) + nd.dot(H, W_hh) + b_h)
        outputs.append(nd.dot(H, W_hq) + b_q)
    return outputs, (H,)


def grad_clipping(params, theta):
    norm = nd.array([0.0], ctx=ctx)
    for param in params:
        norm += (param.grad ** 2).sum()
    norm = norm.sqrt().asscalar()
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def sgd(params, lr, batch_size):
    for param in params:
        param[:] -= lr * param.grad / batch_size


def train(corpus_indices, vocab_size, num_epochs):
    params = get_params(vocab_size)
    loss = gloss.SoftmaxCrossEntropyLoss()
    for epoch in range(num_epochs):
        loss_sum, n = 0.0, 0
        for X, Y in data_iter_random(corpus_indices, BATCH_SIZE, NUM_STEPS):
            state = (nd.zeros((BATCH_SIZE, NUM_HIDDENS), ctx=ctx),)
            with autograd.record():
                outputs, state = rnn(one_hot_encoder(X, vocab_size), state, params)
                outputs = nd.concat(*outputs, dim=0)
                y = Y.T.reshape((-1,))
                batch_loss = loss(outputs, y).mean()
            batch_loss.backward()
            grad_clipping(params, CLIPPING_THETA)
            sgd(params, LR, 1)  # as the notebook: the loss is already a mean over the batch
            loss_sum += batch_loss.asscalar()
            n += 1
    return math.exp(loss_sum / n)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    corpus_indices, vocab_size = load_data_jay_lyrics(sys.argv[1])
    epochs = int(sys.argv[2])
    perplexity = train(corpus_indices, vocab_size, epochs)
    print('notebook: epoch %d, perplexity %.2f (vocabulary %d)' % (epochs, perplexity, vocab_size))
