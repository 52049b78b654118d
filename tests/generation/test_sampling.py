"""Sampling strategies and beam search, with the state carried token to token."""

from unittest import mock

import pytest
import torch

from rnnkit.generation import beam_search, choose_next, generate, gumbel_argmax
from rnnkit.models import LanguageModel


def draws(logits, n=4000, **kw):
    """n independent draws from the same logits (one batch)."""
    return choose_next(logits.expand(n, -1), generator=torch.Generator().manual_seed(0), **kw)


LOGITS = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))


def test_greedy_and_banned():
    assert choose_next(LOGITS, greedy=True).item() == 0
    assert choose_next(LOGITS, greedy=True, banned=[0]).item() == 1
    assert set(draws(LOGITS, banned=[1, 2]).tolist()) == {0, 3}


def test_banned_holds_for_any_logits_and_bad_temperatures_are_refused():
    import pytest

    for temperature in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            choose_next(LOGITS, temperature=temperature)
    for temperature in (1e-30, 1e-3, 1e30):  # −inf / tiny and huge scalings never make a banned id win
        assert 0 not in draws(LOGITS, temperature=temperature, banned=[0]).tolist()
    weird = torch.tensor([[float("nan"), 1.0, float("inf"), float("nan")]])
    assert set(draws(weird, n=200, banned=[2]).tolist()) == {1}  # NaN is never chosen; inf is, unless banned
    assert choose_next(weird, greedy=True, banned=[2]).item() == 1


def test_top_k_and_top_p_restrict_the_support():
    assert set(draws(LOGITS, top_k=2).tolist()) == {0, 1}
    assert set(draws(LOGITS, top_p=0.75).tolist()) == {0, 1}  # 0.5 + 0.3 reaches 0.75
    assert set(draws(LOGITS, top_p=0.5).tolist()) == {0}
    assert set(draws(LOGITS).tolist()) == {0, 1, 2, 3}


def test_temperature_sharpens_and_flattens():
    cold = (draws(LOGITS, temperature=0.3) == 0).float().mean()
    plain = (draws(LOGITS) == 0).float().mean()
    hot = (draws(LOGITS, temperature=3.0) == 0).float().mean()
    assert cold > plain > hot
    assert abs(plain - 0.5) < 0.03  # temperature 1 samples the model's own distribution


class CountingLM(LanguageModel):
    def forward(self, inputs, targets=None, state=None):
        self.calls.append(("forward", tuple(inputs.shape)))
        return super().forward(inputs, targets, state)

    def step(self, ids, state=None):
        self.calls.append(("step", tuple(ids.shape)))
        return super().step(ids, state)

    def stepper(self):  # generation's prepared step: counted as a step
        prepared = super().stepper()

        def step(ids, state=None):
            self.calls.append(("step", tuple(ids.shape)))
            return prepared(ids, state)
        return step

    def sampler(self, rows):  # generation's native token loop: counted as the steps it takes
        prepared = super().sampler(rows)
        if prepared is None:
            return None

        def run(logits, state, draws, *args, step_after_last=True, **options):
            ids, logits, state = prepared(logits, state, draws, *args, step_after_last=step_after_last, **options)
            self.calls += [("step", (rows,))] * (len(ids) - (not step_after_last and len(ids) == draws))
            return ids, logits, state
        return run


def small_lm(vocab=11):
    torch.manual_seed(0)
    model = CountingLM(vocab, 8, 16, num_layers=2, cell="lstm")
    model.calls = []
    return model


def test_generation_carries_state_and_matches_rereading_the_prefix():
    model = small_lm()
    prompt = torch.tensor([1, 2, 3])
    (tokens,) = generate(model, prompt, 12, greedy=True)
    assert model.calls == [("forward", (1, 3))] + [("step", (1,))] * 11  # the prompt once, then one token per call
    seq = prompt.tolist()
    for _ in range(12):  # the O(T²) oracle: re-read the whole prefix every time
        seq.append(model(torch.tensor([seq])).prediction[0, -1].argmax().item())
    assert tokens == seq[3:]


def test_batched_samples_and_stop_token():
    model = small_lm()
    samples = generate(model, torch.tensor([4]), 30, num_samples=5, stop_id=7,
                       generator=torch.Generator().manual_seed(1))
    assert len(samples) == 5 and len({tuple(s) for s in samples}) > 1
    for s in samples:
        assert 7 not in s[:-1] and (s[-1] == 7 or len(s) == 30)


def sequence_logprob(model, prompt, tokens):
    logp = model(torch.tensor([prompt + tokens])).prediction[0].log_softmax(-1)
    return sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(tokens))


def test_beam_search_beats_or_equals_greedy():
    model = small_lm()
    prompt = [1, 5]
    (greedy,) = generate(model, torch.tensor(prompt), 6, greedy=True)
    (width1, _), = beam_search(model, torch.tensor(prompt), 6, beam_width=1)
    assert width1 == greedy
    results = beam_search(model, torch.tensor(prompt), 6, beam_width=4)
    assert len(results) == 4
    best, score = results[0]
    assert abs(score - sequence_logprob(model, prompt, best)) < 1e-4  # scores are the sequence log-probabilities
    assert score >= sequence_logprob(model, prompt, greedy) - 1e-6  # never worse than greedy
    banned = beam_search(model, torch.tensor(prompt), 6, beam_width=4, banned=[best[0]])
    assert all(best[0] not in tokens for tokens, _ in banned)


def test_models_without_step_are_stepped_through_forward():
    """The task-model contract needs only forward and select_state: generation then feeds (B, 1) ids."""
    model = small_lm()

    class ForwardOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, inputs, targets=None, state=None):
            return self.inner.forward(inputs, targets, state)

        def select_state(self, state, index):
            return self.inner.select_state(state, index)

    prompt = torch.tensor([1, 2, 3])
    assert generate(ForwardOnly(), prompt, 8, greedy=True) == generate(model, prompt, 8, greedy=True)
    assert beam_search(ForwardOnly(), prompt, 5, beam_width=3) == beam_search(model, prompt, 5, beam_width=3)


def test_gumbel_argmax_draws_the_softmax_distribution_and_never_a_banned_token():
    """Sampling uses the Gumbel-max trick: frequencies match softmax(logits); -inf logits never come out."""
    logits = torch.tensor([[0.3, -1.2, 2.0, -torch.inf, 0.0, 1.1]])
    n = 60_000
    got = gumbel_argmax(logits.expand(n, -1), torch.Generator().manual_seed(3))
    freq = torch.bincount(got, minlength=6).double() / n
    torch.testing.assert_close(freq, logits[0].double().softmax(-1), atol=0.008, rtol=0)
    assert freq[3] == 0


def test_a_model_built_under_inference_mode_generates():
    """Serving code often loads a model inside torch.inference_mode(); its parameters have no version counter."""
    with torch.inference_mode():
        model = LanguageModel(11, 8, 16, num_layers=2, cell="lstm").eval()
        (tokens,) = generate(model, torch.tensor([1, 2]), 5, greedy=True)
    assert len(tokens) == 5


@pytest.mark.parametrize("strategy", [{}, {"temperature": 0.7, "top_k": 5}, {"top_p": 0.9, "banned": [0, 3]}])
def test_generate_draws_what_a_step_by_step_sampler_draws(strategy):
    """generate draws its Gumbel noise in chunks of steps (GumbelNoise): the same random numbers in the same order
    as one draw per step, so a seeded generator gives the tokens of a plain loop of step and choose_next."""
    from rnnkit.generation.sampling import GumbelNoise, choose_next

    model = small_lm().eval()
    prompt = torch.tensor([1, 2, 3])
    tokens = generate(model, prompt, 150, num_samples=3, generator=torch.Generator().manual_seed(7), **strategy)
    generator = torch.Generator().manual_seed(7)
    with torch.inference_mode():
        out = model(prompt.view(1, -1))
        state = model.select_state(out.state, torch.zeros(3, dtype=torch.long))
        logits, expected = out.prediction[:, -1].expand(3, -1), []
        for _ in range(150):
            nxt = choose_next(logits, generator=generator, **strategy)
            expected.append(nxt)
            logits, state = model.step(nxt, state)
    assert tokens == torch.stack(expected, 1).tolist()
    noise = GumbelNoise((2, 4), 5, torch.Generator().manual_seed(1), chunk=2)
    drawn = torch.stack([noise.next() for _ in range(5)])
    u = torch.rand((5, 2, 4), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(drawn, -(-u.log()).log(), rtol=0, atol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole-lstm", "rnn", "gru-cho", "mut1", "mut2", "mut3"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("input_table", [True, False])
@pytest.mark.parametrize(("strategy", "rows", "stop_id"), [
    ({}, 1, None), ({"temperature": 0.7}, 3, None), ({"greedy": True}, 2, None), ({"temperature": 1.3}, 2, 4),
    ({"temperature": 0.7, "banned": [0, 3]}, 2, None), ({"greedy": True, "banned": [5]}, 1, None),
    ({"temperature": 0.9}, 6, 4), ({"greedy": True}, 9, None), ({"top_k": 4}, 2, None),
    ({"top_p": 0.8, "temperature": 0.7}, 3, None), ({"top_k": 6, "top_p": 0.9, "banned": [2]}, 9, 4),
    ({"greedy": True, "top_k": 3, "top_p": 0.5}, 1, None)])
def test_the_native_token_loop_draws_what_the_loop_of_steps_draws(monkeypatch, cell, precision, input_table,
                                                                   strategy, rows, stop_id):
    """generate's native token loop (LanguageModel.sampler: draw, the token's input-table row or embedding, stack
    and output layer, many tokens per call) gives the tokens of the loop of choose_next and step, seed for seed, at
    any temperature, with top-k and top-p, for the argmax, with banned ids, with a stop token ending rows, at few
    rows and at more (the stack's products as GEMMs), in float32 and with bf16 weights, for every family of the
    native stack step."""
    from rnnkit import native
    from rnnkit.generation import sampling
    from rnnkit.models import language_model
    from rnnkit.precision import autocast

    if not input_table:  # a vocabulary too large for the table: the embedding is looked up
        monkeypatch.setattr(language_model, "INPUT_TABLE_MAX_ENTRIES", 0)
    torch.manual_seed(0)
    model = LanguageModel(11, 6, 20, 2, cell=cell).eval()
    prompt = torch.tensor([1, 2, 3])

    def run():
        with autocast(precision, "cpu"):
            return generate(model, prompt, 150, num_samples=rows, stop_id=stop_id,
                            generator=torch.Generator().manual_seed(5), **strategy)
    with torch.inference_mode(), autocast(precision, "cpu"):
        assert (model.sampler(rows) is not None) == (native.extension() is not None)
    fast = run()
    monkeypatch.setattr(sampling, "_token_loop", lambda *args: None)
    assert fast == run()
    if stop_id is not None:
        assert all(row[-1] == stop_id or len(row) == 150 for row in fast)
    assert not set(strategy.get("banned", [])) & {token for row in fast for token in row}


def test_gumbel_noise_taken_in_runs_is_the_noise_drawn_one_at_a_time():
    from rnnkit.generation.sampling import GumbelNoise

    one = GumbelNoise((2, 4), 9, torch.Generator().manual_seed(1), chunk=4)
    runs = GumbelNoise((2, 4), 9, torch.Generator().manual_seed(1), chunk=4)
    taken = [runs.take(3), runs.take(3), runs.take(9), runs.take(9)]  # never past a block: 3, 1, 4, 1
    assert [len(t) for t in taken] == [3, 1, 4, 1]
    torch.testing.assert_close(torch.cat(taken), torch.stack([one.next() for _ in range(9)]), rtol=0, atol=0)


@pytest.mark.parametrize(("temperature", "top_k", "top_p", "banned"), [
    (1.0, 0, 0.9, None), (0.7, 10, 1.0, None), (1.3, 5, 0.8, [3, 4]), (1.0, 0, 0.5, [0]), (0.8, 20, 0.95, None),
    (1.0, 1, 1.0, None), (1.0, 0, 0.999, [7]), (0.5, 64, 0.3, None), (2.0, 300, 0.9, None)])
def test_the_native_draw_keeps_what_top_k_and_top_p_keep(temperature, top_k, top_p, banned):
    """choose_next's draw at any temperature, top-k, top-p and ban in one native pass (draw_rows / keep_row): the
    tokens of the tensor operations (ban, divide, topk mask, sorted softmax and cumsum, + noise, argmax) for 200
    rows of 65 and 300 logits, with NaN, ±inf, repeated values and a temperature that overflows the largest float.
    Not compared: a row of −inf, where nothing may be drawn (torch's argmax then gives an index that depends on the
    memory layout; the native pass gives 0), and the rows of repeated values cut by top-p (torch's sort orders ties
    as it likes, the native one by id)."""
    from rnnkit import native
    from rnnkit.generation.sampling import GumbelNoise

    torch.manual_seed(0)
    for V in (65, 300):
        logits = torch.randn(200, V) * 3
        logits[0, 5] = float("nan")
        logits[1, :] = -float("inf")
        logits[2, 7] = float("inf")
        logits[3, :] = 1.0
        logits[4, ::2] = float("nan")
        logits[5, : V // 2] = logits[5, V // 2: 2 * (V // 2)]  # every value twice
        logits[6, 9] = torch.finfo(torch.float32).max
        noise = GumbelNoise(logits.shape, 1, torch.Generator().manual_seed(V)).next()
        ids = None if banned is None else torch.tensor(banned)
        drawn = native.gumbel_argmax(logits, noise, temperature, top_k, top_p, ids)
        if native.extension() is None:
            assert drawn is None
            return
        with mock.patch.object(native, "gumbel_argmax", lambda *args: None):  # the tensor operations
            expected = choose_next(logits, temperature, top_k, top_p, banned=banned, noise=noise)
        compared = [r for r in range(len(logits)) if r != 1 and not (r in (3, 5) and top_p < 1)]
        torch.testing.assert_close(drawn[compared], expected[compared], rtol=0, atol=0)
        assert drawn[1] == 0
        assert not set(banned or []) & set(drawn[compared].tolist())


def test_the_native_draw_equals_the_three_tensor_operations_it_replaces():
    """choose_next's draw with noise (generation's path): the native pass picks what nan_to_num, + noise and argmax
    pick, NaN never, +inf over any finite logit, the first index on ties and on a row of -inf."""
    from rnnkit import native
    from rnnkit.generation.sampling import GumbelNoise, _ban

    torch.manual_seed(0)
    logits = torch.randn(64, 300)
    logits[0, 5] = float("nan")
    logits[1, :] = -float("inf")
    logits[2, 7] = float("inf")
    logits[3, :] = 1.0
    logits[4, ::2] = float("nan")
    noise = GumbelNoise(logits.shape, 1, torch.Generator().manual_seed(1)).next()
    noise[3] = 0.0  # a tie across the row
    drawn = native.gumbel_argmax(logits, noise)
    if native.extension() is None:
        assert drawn is None
        return
    torch.testing.assert_close(drawn, (_ban(logits, None) + noise).argmax(-1), rtol=0, atol=0)
    assert drawn[1] == 0 and drawn[2] == 7 and drawn[3] == 0 and drawn[0] != 5 and drawn[4] % 2 == 1
    assert native.gumbel_argmax(logits.double(), noise.double()) is None  # other dtypes: the tensor operations
