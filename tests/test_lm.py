"""The character tokenizer and the decoder-only Transformer: causality, shapes, loss, sampling."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgm.lm import (
    GPT,
    GPTConfig,
    bigram_nll,
    evaluate_nll,
    generate,
    get_batch,
    random_windows,
    sample_next,
    top_k_filter,
    top_p_filter,
    train,
    unigram_nll,
    windows_nll,
)
from dgm.text import BOS, CharTokenizer, load_corpus, paragraphs, train_val_split
from dgm.training import NonFiniteLossError

V, BLOCK = 11, 16


def small_model(seed: int = 0, causal: bool = True, **sizes) -> GPT:
    torch.manual_seed(seed)
    config = dict(vocab_size=V, block_size=BLOCK, n_layer=2, n_head=2, n_embd=16, causal=causal)
    config.update(sizes)
    return GPT(GPTConfig(**config)).eval()


# ----------------------------------------------------------------------------------------------
# The tokenizer and the corpus.


def test_corpus_round_trip():
    text = load_corpus()
    tok = CharTokenizer(text)
    data = tok.encode_corpus(text)
    assert data[0].item() == tok.bos_id
    assert (data == tok.bos_id).sum().item() == len(paragraphs(text))
    assert tok.decode(data) == "\n\n".join(paragraphs(text))
    assert 50_000 < len(data) < 500_000


@given(st.text(alphabet="abc xyz\n.", max_size=40))
def test_encode_decode_inverse(text):
    tok = CharTokenizer("abc xyz\n.")
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_prompt(text)[0, 0].item() == tok.bos_id


def test_tokenizer_bad_input():
    tok = CharTokenizer("hello world")
    with pytest.raises(ValueError, match=r"not in the vocabulary: 'Z'"):
        tok.encode("hello Zorld")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([0, tok.vocab_size])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")
    with pytest.raises(ValueError, match="BOS"):
        CharTokenizer("a" + BOS)


def test_empty_prompt_is_bos_alone():
    tok = CharTokenizer("abc")
    assert tok.encode_prompt("").tolist() == [[tok.bos_id]]


def test_split_is_contiguous():
    data = torch.arange(100)
    train, val = train_val_split(data, 0.1)
    assert torch.equal(torch.cat([train, val]), data) and len(val) == 10
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split(data, 1.0)


# ----------------------------------------------------------------------------------------------
# The model: shapes, the mask, causality.


def test_shapes_and_loss():
    model = small_model()
    idx = torch.randint(V, (3, 7))
    logits, loss = model(idx)
    assert logits.shape == (3, 7, V) and loss is None
    logits, loss = model(idx, idx)
    assert loss.shape == () and torch.isfinite(loss)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, V), idx.reshape(-1))
    assert torch.allclose(loss, expected)
    maps = model.attention_weights(idx)
    assert len(maps) == 2 and maps[0].shape == (3, 2, 7, 7)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 2, 7))
    assert (maps[0].triu(1) == 0).all()


@settings(max_examples=40)
@given(
    T=st.integers(2, BLOCK),
    data=st.data(),
)
def test_causality(T, data):
    """Changing tokens after position t never changes the logits at positions <= t."""
    t = data.draw(st.integers(0, T - 2), label="t")
    tokens = data.draw(st.lists(st.integers(0, V - 1), min_size=T, max_size=T), label="tokens")
    later = data.draw(
        st.lists(st.integers(0, V - 1), min_size=T - 1 - t, max_size=T - 1 - t), label="later"
    )
    model = small_model()
    a = torch.tensor([tokens])
    b = a.clone()
    b[0, t + 1 :] = torch.tensor(later)
    with torch.no_grad():
        la, _ = model(a)
        lb, _ = model(b)
    assert torch.equal(la[:, : t + 1], lb[:, : t + 1])


def test_without_the_mask_the_future_leaks():
    """The causality test has teeth: remove the mask and earlier logits do change."""
    model = small_model(causal=False)
    a = torch.randint(V, (1, 8), generator=torch.Generator().manual_seed(1))
    b = a.clone()
    b[0, -1] = (a[0, -1] + 1) % V
    with torch.no_grad():
        diff = (model(a)[0][:, :-1] - model(b)[0][:, :-1]).abs().max().item()
    assert diff > 1e-4


def test_bad_input_to_the_model():
    model = small_model()
    with pytest.raises(ValueError, match="block_size is 16"):
        model(torch.zeros(1, BLOCK + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="T = 0"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\) tensor of int64"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must lie"):
        model(torch.full((1, 3), V))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(vocab_size=V, n_embd=10, n_head=3)


def test_loss_at_initialisation_is_log_V():
    """Small initial weights give near-uniform predictions: loss ~ log V."""
    Vbig = 80
    model = small_model(vocab_size=Vbig, n_embd=32)
    idx = torch.randint(Vbig, (16, BLOCK), generator=torch.Generator().manual_seed(0))
    _, loss = model(idx, idx)
    assert abs(loss.item() - math.log(Vbig)) < 0.05


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = small_model().train()
    x = torch.randint(V, (4, BLOCK), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, dims=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


# ----------------------------------------------------------------------------------------------
# Batches, evaluation, baselines.


@given(st.integers(0, 1000))
def test_get_batch_is_shifted(seed):
    data = torch.arange(50) * 7 % 13
    x, y = get_batch(data, 8, 5, torch.Generator().manual_seed(seed))
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y, strict=True):
        start = next(i for i in range(50 - 8) if torch.equal(data[i : i + 8], row_x))
        assert torch.equal(data[start + 1 : start + 9], row_y)


def test_get_batch_bad_input():
    with pytest.raises(ValueError, match="longer than block_size"):
        get_batch(torch.arange(8), 8, 2)


def test_evaluate_nll_scores_every_target_once():
    """evaluate_nll equals the NLL of each target computed one prefix at a time."""
    model = small_model()
    data = torch.randint(V, (2 * BLOCK + 5,), generator=torch.Generator().manual_seed(2))
    total = 0.0
    with torch.no_grad():
        for j in range(1, len(data)):
            start = (j - 1) // BLOCK * BLOCK
            logits, _ = model(data[start:j][None])
            total -= torch.log_softmax(logits[0, -1], -1)[data[j]].item()
    assert evaluate_nll(model, data, batch_size=1) == pytest.approx(total / (len(data) - 1), 1e-5)


def test_baselines():
    train = torch.tensor([0, 1, 2] * 50)
    # A perfectly periodic text: the bigram model is nearly certain, the unigram is not.
    assert bigram_nll(train, train, 3, alpha=1e-6) < 1e-4
    assert unigram_nll(train, train, 3, alpha=1e-6) == pytest.approx(math.log(3), 1e-4)


# ----------------------------------------------------------------------------------------------
# Sampling and generation.


@given(st.integers(1, V), st.integers(0, 10_000))
def test_top_k_keeps_exactly_k(k, seed):
    logits = torch.randn(3, V, generator=torch.Generator().manual_seed(seed))
    kept = top_k_filter(logits, k)
    assert (torch.isfinite(kept).sum(-1) == k).all()
    best = logits.topk(k, dim=-1).indices
    assert torch.isfinite(kept.gather(-1, best)).all()
    tokens = sample_next(logits, 1.0, top_k=k, generator=torch.Generator().manual_seed(seed))
    assert (best == tokens).any(-1).all()


@given(st.floats(0.01, 1.0), st.integers(0, 10_000))
def test_top_p_keeps_the_smallest_nucleus(p, seed):
    logits = torch.randn(1, V, generator=torch.Generator().manual_seed(seed)) * 2
    kept = torch.isfinite(top_p_filter(logits, p))[0]
    probs = torch.softmax(logits, -1)[0]
    assert probs[kept].sum() >= p - 1e-6
    assert probs[kept].min() >= probs[~kept].max() if (~kept).any() else True
    smaller = probs[kept].sum() - probs[kept].min()
    assert smaller < p + 1e-6


def test_ties_go_to_the_smaller_token_id():
    """Most probable first, equal logits in increasing id: top-k, the nucleus and greedy
    decoding each pick one definite set when tokens tie at the edge (lm_theory, lm-sampling)."""
    logits = torch.tensor([[0.0, 2.0, 1.0, 2.0, 2.0, 1.0]])  # ids 1, 3 and 4 tie at the top
    kept = lambda filtered: torch.isfinite(filtered)[0].nonzero().flatten().tolist()  # noqa: E731
    assert kept(top_k_filter(logits, 2)) == [1, 3]
    assert kept(top_k_filter(logits, 4)) == [1, 2, 3, 4]
    top = torch.softmax(logits, -1)[0, 1].item()  # the probability of each tied token
    assert kept(top_p_filter(logits, 1.5 * top)) == [1, 3]
    assert kept(top_p_filter(logits, 0.5 * top)) == [1]
    assert sample_next(logits, 0.0).item() == 1
    flat = torch.zeros(2, 1000)  # every token ties: the first ids are kept, in both rows
    assert (torch.isfinite(top_k_filter(flat, 10)) == (torch.arange(1000) < 10)).all()
    assert (torch.isfinite(top_p_filter(flat, 0.0095)) == (torch.arange(1000) < 10)).all()


def test_sampling_bad_input():
    logits = torch.zeros(1, V)
    for bad in (0, V + 1, 2.5):
        with pytest.raises(ValueError, match="top_k"):
            top_k_filter(logits, bad)
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(logits, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, -1.0)


@given(st.integers(0, 40), st.integers(1, 5))
@settings(max_examples=15)
def test_generate_honours_max_new_tokens(n, T):
    model = small_model()
    idx = torch.randint(V, (2, T), generator=torch.Generator().manual_seed(n))
    out = generate(model, idx, n, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, T + n)
    assert torch.equal(out[:, :T], idx)


def test_top_k_one_is_greedy_and_cache_changes_nothing():
    model = small_model()
    idx = torch.randint(V, (2, 3), generator=torch.Generator().manual_seed(3))
    greedy = generate(model, idx, 30, temperature=0.0)
    top1 = generate(model, idx, 30, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(greedy, top1)
    # 30 new tokens pass block_size = 16: the window slides, the cache is rebuilt.
    for kwargs in ({"temperature": 1.3}, {"top_k": 4}, {"top_p": 0.7}):
        a = generate(model, idx, 30, generator=torch.Generator().manual_seed(5), **kwargs)
        b = generate(model, idx, 30, generator=torch.Generator().manual_seed(5),
                     use_cache=False, **kwargs)
        assert torch.equal(a, b)


def test_cached_logits_equal_full_logits():
    model = small_model()
    idx = torch.randint(V, (2, BLOCK), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full, _ = model(idx)
        cache = model.new_cache()
        first, _ = model(idx[:, :5], cache=cache)
        steps = [model(idx[:, t : t + 1], cache=cache)[0] for t in range(5, BLOCK)]
    assert torch.allclose(torch.cat([first, *steps], dim=1), full, atol=1e-5)


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_chunks_through_the_cache_equal_one_full_pass(dtype, atol):
    """Several tokens at a time on top of a non-empty cache: the mask rows T_past..T_past+T-1.

    Within a chunk, a position must still not see the later positions of the same chunk; with
    that part of the mask all True, the chunked logits would differ from the full pass.
    """
    model = small_model().to(dtype)
    idx = torch.randint(V, (2, BLOCK), generator=torch.Generator().manual_seed(7))
    sizes = [3, 4, 2, 5, 2]  # sums to BLOCK; every chunk after the first meets a filled cache
    assert sum(sizes) == BLOCK
    with torch.no_grad():
        full, _ = model(idx)
        cache = model.new_cache()
        pieces = [model(chunk, cache=cache)[0] for chunk in idx.split(sizes, dim=1)]
    assert len(cache[0]) == BLOCK
    chunked = torch.cat(pieces, dim=1)  # (2, BLOCK, V)
    assert chunked.dtype == dtype
    assert torch.allclose(chunked, full, rtol=0, atol=atol)


def test_random_windows_probe():
    """The training probe: random windows, scored target by target like evaluate_nll."""
    data = torch.randint(V, (200,), generator=torch.Generator().manual_seed(8))
    windows = random_windows(data, BLOCK, 50, torch.Generator().manual_seed(0))
    assert windows.shape == (math.ceil(50 / BLOCK), BLOCK + 1)
    again = random_windows(data, BLOCK, 50, torch.Generator().manual_seed(0))
    assert torch.equal(windows, again)
    stretches = data.unfold(0, BLOCK + 1, 1)  # (len - BLOCK, BLOCK + 1): every window of data
    assert all((stretches == row).all(-1).any() for row in windows)
    model = small_model()
    stream = data[: 3 * BLOCK + 1]  # exactly three full windows for evaluate_nll
    contiguous = stream[torch.arange(3)[:, None] * BLOCK + torch.arange(BLOCK + 1)]
    assert windows_nll(model, contiguous) == pytest.approx(evaluate_nll(model, stream), 1e-6)
    with pytest.raises(ValueError, match="longer than block_size"):
        random_windows(data[:BLOCK], BLOCK, 10)


def test_generate_bad_input_and_long_prompt():
    model = small_model()
    with pytest.raises(ValueError, match="empty prompt is BOS alone"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), -1)
    # A prompt longer than block_size: documented behaviour, the last block_size tokens count.
    long = torch.randint(V, (1, 3 * BLOCK), generator=torch.Generator().manual_seed(6))
    out = generate(model, long, 1, temperature=0.0)
    with torch.no_grad():
        expected = model(long[:, -BLOCK:])[0][:, -1].argmax(-1)
    assert out.shape == (1, 3 * BLOCK + 1) and out[0, -1] == expected[0]


# ----------------------------------------------------------------------------------------------
# The training loop.


def test_train_lowers_the_loss_and_records_every_evaluation():
    data = torch.arange(400) % V  # a periodic text: each character fixes the next one
    model = small_model()
    history = train(model, data[:300], data[300:], steps=60, batch_size=8, lr=1e-2, warmup=5,
                    eval_every=20, generator=torch.Generator().manual_seed(0), progress=False)
    assert history.eval_step == [20, 40, 60] and len(history.step_loss) == 60
    assert len(history.train_loss) == len(history.eval_loss) == len(history.seconds) == 3
    assert history.eval_loss[-1] < 0.5 * math.log(V)  # far below guessing
    assert history.eval_loss[-1] < history.eval_loss[0]
    assert not model.training  # handed back in evaluation mode


def test_a_non_finite_loss_stops_training_and_says_where():
    data = torch.arange(200) % V
    model = small_model()
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="step 0 of 5"):
        train(model, data[:150], data[150:], steps=5, batch_size=4, progress=False)


def test_corpus_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="restore dgm/lm_corpus.txt"):
        load_corpus(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n\n")
    with pytest.raises(ValueError, match="empty"):
        load_corpus(tmp_path / "empty.txt")
    (tmp_path / "bos.txt").write_text(f"text with a {BOS} inside")
    with pytest.raises(ValueError, match="BOS"):
        load_corpus(tmp_path / "bos.txt")
