"""A small decoder-only Transformer language model, trained by next-token prediction.

Vaswani et al. (2017), "Attention Is All You Need", Sec. 3.2.1 (scaled dot-product attention,
their eq. 1) with the decoder's mask of Sec. 3.2.3; Radford et al. (2018, 2019), GPT and GPT-2:
a stack of decoder blocks only, learned position embeddings, layer norm before each sub-layer.
The model defines the factorisation

    p(x_1, ..., x_T | x_0) = prod_{t=1}^{T} p(x_t | x_{<t}),    x_0 = BOS,

and returns, at every position t of its input x_0 .. x_{T-1}, the logits of p(. | x_{<=t}):
the distribution of the token that comes next. Training minimises the cross-entropy of these
distributions against the input shifted left by one (teacher forcing); :func:`generate` samples
from them one token at a time.

What is here, in reading order:
  * :class:`GPTConfig` and :func:`causal_mask`;
  * :class:`CausalSelfAttention`, :class:`MLP`, :class:`Block` and :class:`GPT`;
  * :func:`get_batch` (shifted input/target pairs), :func:`windows_nll`, :func:`random_windows`,
    :func:`evaluate_nll`, the unigram and bigram baselines, and :func:`train`;
  * :func:`top_k_filter`, :func:`top_p_filter`, :func:`sample_next` and :func:`generate`, with a
    key-value cache (:class:`LayerCache`) so that each new token costs one position, not T.

Shapes: B sequences, T positions, C = n_embd channels, nh heads of hs = C / nh channels each,
V tokens in the vocabulary.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dgm.config import seed_everything, seeded_generator
from dgm.inputs import check_token_ids, check_token_stream, unchecked
from dgm.results import cached
from dgm.training import History, check_finite_loss, warmup_cosine

# ----------------------------------------------------------------------------------------------
# Configuration and the mask.


@dataclass
class GPTConfig:
    """Sizes of the model. ``causal=False`` removes the mask: only to show what it prevents."""

    vocab_size: int
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    causal: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}: each head "
                "gets n_embd / n_head channels"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


def causal_mask(T: int) -> torch.Tensor:
    """The (T, T) boolean mask M with M[i, j] = (j <= i): query i may look at keys 0..i only."""
    return torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T)


# ----------------------------------------------------------------------------------------------
# The decoder.


class LayerCache:
    """The keys and values one attention layer has computed so far (the key-value cache)."""

    def __init__(self):
        self.k: torch.Tensor | None = None  # (B, nh, T_past, hs)
        self.v: torch.Tensor | None = None  # (B, nh, T_past, hs)

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.size(2)

    def update(self, k: torch.Tensor, v: torch.Tensor):
        """Append this step's keys and values; return all of them, (B, nh, T_past + T, hs)."""
        if self.k is not None:
            k = torch.cat([self.k, k], dim=2)
            v = torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


class CausalSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with a causal mask (Vaswani et al., eq. 1).

    For each head, softmax(Q K^T / sqrt(hs) + M) V, where M[i, j] = 0 if j <= i and -inf
    otherwise: position i mixes the values of positions 0..i and never of a later one.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.head_size = config.n_embd // config.n_head
        self.causal = config.causal
        self.query = nn.Linear(config.n_embd, config.n_embd)
        self.key = nn.Linear(config.n_embd, config.n_embd)
        self.value = nn.Linear(config.n_embd, config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.register_buffer("mask", causal_mask(config.block_size), persistent=False)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, x, cache: LayerCache | None = None, return_weights: bool = False):
        B, T, C = x.shape
        q = self.split_heads(self.query(x))  # (B, nh, T, hs)
        k = self.split_heads(self.key(x))  # (B, nh, T, hs)
        v = self.split_heads(self.value(x))  # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, nh, T_past + T, hs)
        T_past = k.size(2) - T
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)  # (B, nh, T, T_past + T)
        if self.causal:
            allowed = self.mask[T_past : T_past + T, : T_past + T]  # (T, T_past + T)
            scores = scores.masked_fill(~allowed, float("-inf"))
        weights = F.softmax(scores, dim=-1)  # (B, nh, T, T_past + T), rows sum to 1
        y = self.attn_dropout(weights) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side
        y = self.resid_dropout(self.proj(y))
        return (y, weights) if return_weights else y


class MLP(nn.Module):
    """The position-wise feed-forward network: C -> 4C -> C with a GELU (Vaswani et al., eq. 2)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """One decoder block, pre-norm: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, cache: LayerCache | None = None, return_weights: bool = False):
        if return_weights:
            a, weights = self.attn(self.ln_1(x), cache, return_weights=True)
        else:
            a, weights = self.attn(self.ln_1(x), cache), None
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return (x, weights) if return_weights else x


class GPT(nn.Module):
    """Token and position embeddings, n_layer decoder blocks, a final layer norm, the LM head.

    ``forward(idx)`` maps token ids (B, T) to logits (B, T, V); row t of the logits parametrises
    p(x_{t+1} | x_0..x_t) through a softmax. With ``targets`` (B, T) it also returns the mean
    cross-entropy, the negative log-likelihood per token in nats.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        # Small weights (GPT-2's N(0, 0.02^2)): the initial logits are near 0, the initial
        # distribution near uniform, and the initial loss near log V.
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> list[LayerCache]:
        """An empty key-value cache, one :class:`LayerCache` per block."""
        return [LayerCache() for _ in self.blocks]

    def check_input(self, idx: torch.Tensor, T_past: int = 0) -> None:
        """Raise ValueError unless idx is (B, T) of token ids, 1 <= T_past + T <= block_size."""
        check_token_ids("idx", idx, self.config.vocab_size)
        T = idx.shape[1]
        if T < 1:
            raise ValueError("idx has no tokens (T = 0); start every sequence with BOS")
        if T_past + T > self.config.block_size:
            raise ValueError(
                f"the context has {T_past + T} tokens but block_size is "
                f"{self.config.block_size}: the model has no position embedding beyond that. "
                "Keep the last block_size tokens (idx[:, -block_size:]); generate() does so."
            )

    def forward(self, idx, targets=None, cache: list[LayerCache] | None = None):
        T_past = len(cache[0]) if cache is not None else 0
        self.check_input(idx, T_past)
        B, T = idx.shape
        positions = torch.arange(T_past, T_past + T, device=idx.device)  # (T,)
        x = self.token_embedding(idx) + self.position_embedding(positions)  # (B, T, C)
        x = self.dropout(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cache[i] if cache is not None else None)  # (B, T, C)
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits, None
        if targets.shape != idx.shape:
            raise ValueError(
                f"targets must have the shape of idx {tuple(idx.shape)}, got "
                f"{tuple(targets.shape)}; get_batch returns matching pairs"
            )
        V = logits.size(-1)
        loss = F.cross_entropy(logits.view(B * T, V), targets.reshape(B * T))  # (B*T, V) rows
        return logits, loss

    @torch.no_grad()
    def attention_weights(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The attention weights of every block for ``idx``: a list of (B, nh, T, T) tensors."""
        self.check_input(idx)
        B, T = idx.shape
        positions = torch.arange(T, device=idx.device)  # (T,)
        x = self.token_embedding(idx) + self.position_embedding(positions)  # (B, T, C)
        maps = []
        for block in self.blocks:
            x, weights = block(x, return_weights=True)
            maps.append(weights)
        return maps


# ----------------------------------------------------------------------------------------------
# Training: shifted pairs, the loss on a whole split, two baselines, the loop.


def get_batch(
    data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator | None = None
):
    """B random windows of the id stream ``data`` (N,): inputs x (B, T) and targets y (B, T).

    y is x shifted left by one: y[b, t] = x[b, t + 1] is the token that follows x[b, :t + 1].
    A window that starts at a BOS is exactly "the sequence shifted right behind a BOS".
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    windows = random_windows(data, block_size, batch_size * block_size, generator)  # (B, T + 1)
    return windows[:, :-1], windows[:, 1:]  # x (B, T), y (B, T)


@torch.no_grad()
def windows_nll(model: GPT, windows: torch.Tensor, batch_size: int = 64) -> float:
    """Mean NLL (nats per token) of windows[:, 1:] given windows[:, :-1]; windows (n, T + 1)."""
    if windows.dim() != 2 or windows.size(0) < 1 or windows.size(1) < 2:
        raise ValueError(f"windows must be (n, T + 1) with n, T >= 1, got {tuple(windows.shape)}")
    was_training = model.training
    model.eval()
    windows = windows.to(next(model.parameters()).device)
    total = 0.0
    for chunk in windows.split(batch_size):
        _, loss = model(chunk[:, :-1], chunk[:, 1:])  # inputs (b, T), targets (b, T)
        total += loss.item() * chunk[:, 1:].numel()
    model.train(was_training)
    return total / windows[:, 1:].numel()


def random_windows(
    data: torch.Tensor, block_size: int, n_tokens: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """ceil(n_tokens / block_size) windows of block_size + 1 tokens at random starts in ``data``.

    Scored by :func:`windows_nll`, they give about ``n_tokens`` targets drawn from all of
    ``data``, not from one end of it: the training-split probe of :func:`train`.
    """
    if data.dim() != 1 or len(data) <= block_size:
        raise ValueError(
            f"data must be a 1-D id tensor longer than block_size={block_size}, "
            f"got shape {tuple(data.shape)}"
        )
    n = max(1, math.ceil(n_tokens / block_size))
    starts = torch.randint(len(data) - block_size, (n,), generator=generator)  # (n,)
    return data[starts[:, None] + torch.arange(block_size + 1)]  # (n, T + 1)


@torch.no_grad()
def evaluate_nll(model: GPT, data: torch.Tensor, batch_size: int = 64) -> float:
    """Mean negative log-likelihood (nats per token) of every token of ``data`` after the first.

    The stream is cut into consecutive windows of block_size; every target data[1:] is scored
    exactly once, given the tokens before it in its window. The unigram and bigram baselines
    score the same targets.
    """
    T = model.config.block_size
    if data.dim() != 1 or len(data) < 2:
        raise ValueError("data must be a 1-D id tensor with at least two tokens")
    was_training = model.training
    model.eval()
    data = data.to(next(model.parameters()).device)
    n_full = (len(data) - 1) // T
    starts = torch.arange(n_full, device=data.device) * T  # (n_full,)
    windows = data[starts[:, None] + torch.arange(T + 1, device=data.device)]  # (n_full, T + 1)
    count = n_full * T
    total = windows_nll(model, windows, batch_size) * count if n_full else 0.0
    rest = len(data) - 1 - n_full * T
    if rest:
        x = data[n_full * T : n_full * T + rest][None]  # (1, rest)
        y = data[n_full * T + 1 :][None]  # (1, rest)
        _, loss = model(x, y)
        total += loss.item() * rest
        count += rest
    model.train(was_training)
    return total / count


def unigram_nll(train: torch.Tensor, val: torch.Tensor, V: int, alpha: float = 0.5) -> float:
    """NLL of val[1:] under token frequencies counted on ``train``, add-alpha smoothed."""
    counts = torch.bincount(train, minlength=V).double() + alpha  # (V,)
    log_p = counts.log() - counts.sum().log()  # (V,)
    return -log_p[val[1:]].mean().item()


def bigram_nll(train: torch.Tensor, val: torch.Tensor, V: int, alpha: float = 0.5) -> float:
    """NLL of val[1:] under p(x_t | x_{t-1}) counted on ``train``, add-alpha smoothed.

    A model that sees only the previous token, fitted by counting: a Transformer that beats it
    on unseen text makes use of more context than one token.
    """
    pairs = train[:-1] * V + train[1:]  # (N - 1,): pair (a, b) as one index a V + b
    counts = torch.bincount(pairs, minlength=V * V).double().view(V, V) + alpha  # (V, V)
    log_p = counts.log() - counts.sum(dim=1, keepdim=True).log()  # (V, V), rows: previous
    return -log_p[val[:-1], val[1:]].mean().item()


def train(
    model: GPT,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    warmup: int = 50,
    weight_decay: float = 0.1,
    eval_every: int = 100,
    generator: torch.Generator | None = None,
    progress: bool | None = None,
    probe_seed: int = 0,
) -> History:
    """AdamW on shifted minibatches from ``train_data`` for ``steps`` steps (teacher forcing).

    The learning rate warms up linearly over the first ``warmup`` steps (all of them if the run
    is shorter) and then decays along a cosine to lr / 10 (:func:`dgm.training.warmup_cosine`).

    Every ``eval_every`` steps, and after the last, the NLL of the whole validation split
    (:func:`evaluate_nll`) and of as many targets in random windows of the training split
    (:func:`random_windows`, drawn once with ``probe_seed``; :func:`windows_nll`) is recorded.
    ``seconds`` counts the training steps only, not these evaluations. ``progress=None`` shows
    a tqdm bar only when stderr is a terminal.
    """
    if steps < 1 or eval_every < 1:
        raise ValueError(f"steps and eval_every must be >= 1, got {steps} and {eval_every}")
    T = model.config.block_size
    device = next(model.parameters()).device
    for name, data in (("train_data", train_data), ("val_data", val_data)):  # the door
        check_token_stream(name, data, model.config.vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = warmup_cosine(optimizer, steps, min(warmup, steps), final=0.1)
    probe_generator = seeded_generator(probe_seed)
    train_probe = random_windows(train_data, T, len(val_data) - 1, probe_generator)  # (n, T + 1)
    history = History(threads=torch.get_num_threads())
    step_loss = torch.empty(steps, device=device)  # filled without a host round trip
    bar = tqdm(range(steps), desc="train", disable=None if progress is None else not progress)
    elapsed = 0.0
    with unchecked():  # the ids were checked above; the steps only index them
        for step in bar:
            start = time.perf_counter()
            model.train()
            x, y = get_batch(train_data, T, batch_size, generator)  # (B, T), (B, T)
            _, loss = model(x.to(device), y.to(device))
            check_finite_loss(loss, f"step {step} of {steps}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step_loss[step] = loss.detach()
            elapsed += time.perf_counter() - start
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                history.eval_step.append(step + 1)
                history.seconds.append(elapsed)
                history.train_loss.append(windows_nll(model, train_probe))
                history.eval_loss.append(evaluate_nll(model, val_data))
                bar.set_postfix(train=f"{history.train_loss[-1]:.3f}",
                                val=f"{history.eval_loss[-1]:.3f}")
    bar.close()
    history.step_loss = step_loss.tolist()
    model.eval()
    return history


def trained_gpt(
    config: GPTConfig,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    steps: int,
    seed: int = 0,
    **train_options,
) -> tuple[GPT, History, float]:
    """A fresh :class:`GPT` trained by :func:`train`, run once per content key and afterwards
    read from the result store (:func:`dgm.results.cached`).

    ``seed`` fixes the initial weights and the minibatches; ``train_options`` go to
    :func:`train`. Returns the model, its history and the seconds the whole run took (steps and
    evaluations), as recorded when the weights were trained.
    """

    def train_model():
        generator = seed_everything(seed)
        model = GPT(config)
        start = time.perf_counter()
        history = train(model, train_data, val_data, steps, generator=generator, **train_options)
        seconds = time.perf_counter() - start
        return {"state": model.state_dict(), "history": asdict(history), "seconds": seconds}

    key = (config, steps, seed, sorted(train_options.items()))
    stored = cached("gpt", train_model, config=key, code=("dgm.lm",), data=(train_data, val_data))
    model = GPT(config)
    model.load_state_dict(stored["state"])
    return model.eval(), History(**stored["history"]), stored["seconds"]


# ----------------------------------------------------------------------------------------------
# Inference: filters, one sampling step, the decoding loop.


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (B, V), set the rest to -inf (Fan et al., 2018).

    Most probable first, and of equal logits the smaller token id first (a stable sort), so
    that the set kept is one definite set when ties straddle the k-th place.
    """
    V = logits.size(-1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= V:
        raise ValueError(f"top_k must be an integer in 1..{V} (the vocabulary size), got {k!r}")
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices[..., :k]  # (B, k)
    values = logits.gather(-1, order)  # (B, k)
    return torch.full_like(logits, float("-inf")).scatter(-1, order, values)  # (B, V)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al., 2020): keep the smallest set of most probable tokens
    whose probabilities sum to at least p, set the rest to -inf. Rows (B, V).

    Tokens are taken most probable first, and of equal logits the smaller id first (a stable
    sort), so that the nucleus is one definite set when ties straddle its edge.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {p}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)  # (B, V)
    probs = F.softmax(sorted_logits, dim=-1)  # (B, V)
    before = torch.cumsum(probs, dim=-1) - probs  # (B, V): mass of the better tokens
    drop = before >= p  # the first token is always kept (before = 0 < p)
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)  # (B, V)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row from the last-position logits (B, V): returns ids (B, 1).

    temperature = 0 is greedy decoding (argmax, the smaller id among equal logits); otherwise
    the logits are divided by the temperature, filtered by top-k and/or top-p, and a token is
    drawn from their softmax.
    """
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 means greedy), got {temperature}"
        )
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = F.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)


@torch.no_grad()
def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Autoregressive decoding: append ``max_new_tokens`` tokens to ``idx`` (B, T) one by one.

    Each new token is drawn by :func:`sample_next` from p(. | everything so far) and fed back
    as input. The model conditions on at most block_size tokens: a longer context (a long
    prompt, or a long generation) is cut to its last block_size tokens (a sliding window).
    With ``use_cache`` the keys and values of earlier positions are kept, so each step runs
    the network on one new position only; once the window slides, positions shift and every
    step recomputes the window instead. Returns (B, T + max_new_tokens).
    """
    if not torch.is_tensor(idx) or idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(
            "idx must be a non-empty (B, T) tensor of token ids; an empty prompt is BOS alone "
            "(tokenizer.encode_prompt(''))"
        )
    n = max_new_tokens
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    block_size = model.config.block_size
    was_training = model.training
    model.eval()
    idx = idx.to(next(model.parameters()).device)
    cache = None
    for _ in range(max_new_tokens):
        if not use_cache:
            logits, _ = model(idx[:, -block_size:])  # (B, T', V)
        elif cache is not None and len(cache[0]) < block_size:
            logits, _ = model(idx[:, -1:], cache=cache)  # (B, 1, V): the new position only
        else:  # first step, or the window has slid: (re)compute the whole window
            cache = model.new_cache()
            logits, _ = model(idx[:, -block_size:], cache=cache)  # (B, T', V)
        next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
        idx = torch.cat([idx, next_id], dim=1)  # (B, T + 1)
    model.train(was_training)
    return idx
