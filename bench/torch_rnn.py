"""bench/notebook_rnn.py ported line for line to PyTorch, on the CPU: the peer for bench/speed.py.

The same data (the first 10,000 characters, line breaks as spaces), random sampler, one-hot
inputs per step (torch.nn.functional.one_hot), ReLU RNN with one product per step (@), mean
cross-entropy, clipping over all the gradients as one vector and plain SGD under torch.no_grad;
batch 32, 35 steps, 256 hidden units, lr 100, clipping 0.01. PyTorch's own thread count.

usage: python torch_rnn.py DATA_ZIP EPOCHS
prints, after training, one line with the last epoch's perplexity.
"""
import math
import random
import sys
import zipfile

import torch
import torch.nn.functional as F

NUM_HIDDENS, BATCH_SIZE, NUM_STEPS, LR, CLIPPING_THETA = 256, 32, 35, 1e2, 1e-2


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
        X = torch.tensor([corpus_indices[s:s + num_steps] for s in starts])
        Y = torch.tensor([corpus_indices[s + 1:s + 1 + num_steps] for s in starts])
        yield X, Y


def one_hot_encoder(X, size):
    return [F.one_hot(x, size).float() for x in X.T]


def get_params(vocab_size):
    def normal(*shape):
        return (torch.randn(*shape) * 0.01).requires_grad_()

    return [normal(vocab_size, NUM_HIDDENS), normal(NUM_HIDDENS, NUM_HIDDENS),
            torch.zeros(NUM_HIDDENS, requires_grad=True), normal(NUM_HIDDENS, vocab_size),
            torch.zeros(vocab_size, requires_grad=True)]


def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.relu(X @ W_xh + H @ W_hh + b_h)
        outputs.append(H @ W_hq + b_q)
    return outputs, (H,)


def grad_clipping(params, theta):
    norm = torch.cat([param.grad.reshape(-1) for param in params]).norm().item()
    if norm > theta:
        for param in params:
            param.grad *= theta / norm


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size


def train(corpus_indices, vocab_size, num_epochs):
    params = get_params(vocab_size)
    for epoch in range(num_epochs):
        loss_sum, n = 0.0, 0
        for X, Y in data_iter_random(corpus_indices, BATCH_SIZE, NUM_STEPS):
            state = (torch.zeros(BATCH_SIZE, NUM_HIDDENS),)
            outputs, state = rnn(one_hot_encoder(X, vocab_size), state, params)
            outputs = torch.cat(outputs, dim=0)
            y = Y.T.reshape(-1)
            batch_loss = F.cross_entropy(outputs, y)
            for param in params:
                param.grad = None
            batch_loss.backward()
            grad_clipping(params, CLIPPING_THETA)
            sgd(params, LR, 1)  # as the notebook: the loss is already a mean over the batch
            loss_sum += batch_loss.item()
            n += 1
    return math.exp(loss_sum / n)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    corpus_indices, vocab_size = load_data_jay_lyrics(sys.argv[1])
    epochs = int(sys.argv[2])
    perplexity = train(corpus_indices, vocab_size, epochs)
    print('torch: epoch %d, perplexity %.2f (vocabulary %d)' % (epochs, perplexity, vocab_size))
