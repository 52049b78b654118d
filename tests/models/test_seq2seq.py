"""The encoder-decoder: attention distributions, padding, the bridge, the one-call and stepped decoders, scheduled
sampling, gradients (float64 gradcheck), and decoding (beam 1 = greedy; beam search finds the best sequence
where greedy does not)."""

import math

import pytest
import torch
from torch.func import functional_call

from rnnkit.generation.seq2seq import beam_decode, greedy_decode
from rnnkit.layers.sequence import RNN
from rnnkit.models.seq2seq import Attention, Bridge, DecoderState, Memory, Seq2Seq

from ..conftest import cell_kwargs

SETTINGS = [(att, ctx) for att in ("none", "additive", "dot", "general") for ctx in ("init", "input", "both")]


def _model(attention="additive", context="init", bidirectional=True, cell="lstm", **kw):
    if attention == "dot":
        bidirectional = False  # equal query and key sizes
    return Seq2Seq(11, 9, embedding_size=6, hidden_size=8, num_layers=2, cell=cell, bidirectional=bidirectional,
                   attention=attention, context=context, **kw)


def _batch():
    lengths = torch.tensor([7, 4, 2, 1])
    source = torch.randint(1, 11, (4, 7)) * (torch.arange(7)[None] < lengths[:, None])
    targets = torch.randint(3, 9, (4, 5))
    targets[1, 3:] = -100
    targets[3, 1:] = -100
    return source, lengths, targets


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_attention_weights_sum_to_one_over_real_positions_and_are_zero_on_padding(kind):
    att = Attention(kind, 5, 5)
    keys = torch.randn(3, 6, 5)
    mask = torch.arange(6)[None] < torch.tensor([6, 3, 1])[:, None]
    for query in (torch.randn(3, 5), torch.randn(3, 4, 5)):
        ctx, alpha = att(query, keys, att.prepare(keys), mask)
        m = mask if query.dim() == 2 else mask[:, None]
        assert torch.allclose(alpha.sum(-1), torch.ones(alpha.shape[:-1]))
        assert (alpha.masked_select(~m.expand_as(alpha)) == 0).all()
        assert torch.allclose(ctx, torch.einsum("bs,bsk->bk", alpha, keys) if query.dim() == 2 else
                              torch.bmm(alpha, keys), atol=1e-6)


def test_additive_attention_is_bahdanaus_equation():
    att = Attention("additive", 4, 6, attention_size=5)
    q, keys = torch.randn(2, 4), torch.randn(2, 3, 6)
    mask = torch.ones(2, 3, dtype=torch.bool)
    _, alpha = att(q, keys, att.prepare(keys), mask)
    for b in range(2):
        e = torch.stack([att.v.weight[0] @ torch.tanh(att.query_proj.weight @ q[b] + att.key_proj.weight @ keys[b, s]
                                                      + att.key_proj.bias) for s in range(3)])
        assert torch.allclose(alpha[b], e.softmax(0), atol=1e-6)


def test_dot_attention_with_unequal_sizes_is_refused():
    with pytest.raises(ValueError, match="dot attention needs"):
        Attention("dot", 4, 8)


@pytest.mark.parametrize("attention,context", SETTINGS)
def test_a_padded_batch_equals_each_example_alone(attention, context):
    model = _model(attention, context).eval()
    source, lengths, targets = _batch()
    logits = model(source, targets, lengths=lengths).prediction
    for r in range(4):
        n, m = int(lengths[r]), int((targets[r] != -100).sum())
        alone = model(source[r:r + 1, :n], targets[r:r + 1, :m]).prediction
        assert torch.allclose(logits[r, :m], alone[0], atol=1e-5), (attention, context, r)


@pytest.mark.parametrize("cell", ["gru", "mut1", "rnn", "jordan"])
def test_any_registered_cell_encodes_and_decodes(cell):
    model = _model("general", "both", cell=cell, **cell_kwargs(cell)).eval()
    source, lengths, targets = _batch()
    out = model(source, targets, lengths=lengths)
    out.loss.backward()
    assert math.isfinite(out.loss.item())
    assert len(greedy_decode(model, source, lengths, max_length=6)) == 4


def test_bridge_passes_an_equal_state_unchanged_and_maps_both_directions():
    enc, dec = RNN(3, 8, 2, cell="lstm"), RNN(3, 8, 2, cell="lstm")
    bridge = Bridge.between(enc, dec)
    assert bridge.identity and not list(bridge.parameters())
    _, final = enc(torch.randn(2, 4, 3))
    assert all(torch.equal(a, b) for a, b in zip(bridge(final), final))

    bi, dec1 = RNN(3, 5, 2, cell="lstm", bidirectional=True), RNN(3, 8, 1, cell="lstm")
    bridge = Bridge.between(bi, dec1)
    _, final = bi(torch.randn(2, 4, 3))
    h0, c0 = bridge(final)
    assert h0.shape == c0.shape == (1, 2, 8)
    top = torch.cat([final.h[2], final.h[3]], -1)  # layer 1 forward and backward: the top layers aligned
    assert torch.allclose(h0[0], torch.tanh(bridge.proj[0](top)))
    assert torch.allclose(c0[0], bridge.proj[1](torch.cat([final.c[2], final.c[3]], -1)))


@pytest.mark.parametrize("attention", ["none", "general"])
def test_the_one_call_decoder_equals_stepping_it(attention):
    model = _model(attention, "both", input_feeding=False).eval()
    source, lengths, targets = _batch()
    memory, start = model.encode(source, lengths)
    tokens = model.decoder_inputs(targets)
    logits, _ = model.decoder(tokens, start, memory)
    state, stepped = start, []
    for t in range(tokens.shape[1]):
        step_logits, state, _ = model.decoder.step(tokens[:, t], state, memory)
        stepped.append(step_logits)
    assert torch.allclose(logits, torch.stack(stepped, 1), atol=1e-5)


def test_free_running_feeds_the_models_own_greedy_choices():
    model = _model("additive", "init").eval()
    source, lengths, _ = _batch()
    hyps = greedy_decode(model, source, lengths, max_length=6)
    targets = torch.full((4, 6), 3)  # only the first true token (<bos>) is read when teacher_forcing = 0
    logits = model(source, targets, lengths=lengths, teacher_forcing=0.0).prediction
    for r, h in enumerate(hyps):
        n = len(h.tokens)
        assert logits[r, :n].argmax(-1).tolist() == h.tokens


def test_scheduled_sampling_mixes_true_and_own_tokens():
    model = _model("additive", "init")
    source, lengths, targets = _batch()
    forced = model(source, targets, lengths=lengths, teacher_forcing=1.0).loss
    torch.manual_seed(1)
    mixed_a = model(source, targets, lengths=lengths, teacher_forcing=0.5).loss
    torch.manual_seed(1)
    mixed_b = model(source, targets, lengths=lengths, teacher_forcing=0.5).loss
    assert mixed_a == mixed_b  # the coin flips come from torch's generator
    assert torch.isfinite(forced) and torch.isfinite(mixed_a)


@pytest.mark.parametrize("attention,context", [("additive", "init"), ("general", "both"), ("none", "input")])
def test_gradcheck_through_encoder_attention_and_decoder(attention, context):
    model = Seq2Seq(7, 6, embedding_size=3, hidden_size=4, num_layers=1, bidirectional=True, attention=attention,
                    context=context).double()
    source, lengths = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2])
    targets = torch.tensor([[3, 4, 2], [5, 2, -100]])
    names = ["encoder.embedding.weight", "encoder.rnn.cells.1.weight_hh", "decoder.rnn.cells.0.weight_ih",
             "decoder.head.weight"] + (["decoder.attention.key_proj.weight"] if attention != "none" else [])
    params = dict(model.named_parameters())
    chosen = tuple(params[n].detach().clone().requires_grad_() for n in names)

    def loss(*ps):
        return functional_call(model, {**params, **dict(zip(names, ps))}, (source, targets),
                               {"lengths": lengths}).loss

    assert torch.autograd.gradcheck(loss, chosen, eps=1e-6, atol=1e-6)


def test_beam_of_width_one_is_greedy_decoding():
    model = _model("general", "both").eval()
    source, lengths, _ = _batch()
    greedy = greedy_decode(model, source, lengths, max_length=8)
    beam = beam_decode(model, source, lengths, beam_width=1, max_length=8)
    for g, b in zip(greedy, beam):
        assert g.tokens == b.tokens and g.finished == b.finished
        assert abs(g.log_prob - b.log_prob) < 1e-9
        assert torch.allclose(g.attention, b.attention)


class _KnownChain(torch.nn.Module):
    """A decoder whose next-token probabilities depend only on the previous token (ids: 0 pad, 1 bos, 2 eos,
    3 'a', 4 'b'): from <bos> 'a' 0.6, 'b' 0.4; after 'a' 'a' / 'b' / <eos> 1/3 each; after 'b' <eos> 0.9.
    Greedy takes 'a' then ends with P ≤ 0.6 · 1/3 = 0.2; the best sequence is 'b' <eos>: 0.36."""

    bos_id, eos_id = 1, 2
    table = {1: {3: 0.6, 4: 0.4}, 3: {3: 1 / 3, 4: 1 / 3, 2: 1 / 3}, 4: {2: 0.9, 3: 0.1}, 2: {2: 1.0}}

    @property
    def decoder(self):
        return self

    def encode(self, source, lengths):
        B = source.shape[0]
        return Memory(torch.zeros(B, 1, 1), torch.ones(B, 1, dtype=torch.bool), None, torch.zeros(B, 1)), \
            DecoderState(torch.zeros(1, B, 1), None)

    @staticmethod
    def select(state, index):
        return DecoderState(state.rnn.index_select(1, index), None)

    def step(self, tokens, state, memory):
        probs = torch.full((len(tokens), 5), 1e-12)
        for r, t in enumerate(tokens.tolist()):
            for nxt, p in self.table[t].items():
                probs[r, nxt] = p
        return probs.log(), state, None


def test_beam_search_finds_the_best_sequence_where_greedy_does_not():
    model, source = _KnownChain(), torch.zeros(2, 1, dtype=torch.long)
    (greedy, _) = greedy_decode(model, source, max_length=5)
    assert greedy.tokens[0] == 3 and math.exp(greedy.log_prob) <= 0.2 + 1e-6
    (best, _) = beam_decode(model, source, beam_width=2, max_length=5, length_penalty=0.0)
    assert best.tokens == [4] and best.finished
    assert math.isclose(best.log_prob, math.log(0.4 * 0.9), rel_tol=1e-6)


def test_beam_search_length_penalty_ranks_by_mean_log_probability():
    model, source = _KnownChain(), torch.zeros(1, 1, dtype=torch.long)
    (best,) = beam_decode(model, source, beam_width=3, max_length=5, length_penalty=1.0)
    # 'b' <eos>: log(0.36)/2 = -0.51 beats every longer 'a' path (log(0.2)/2 = -0.80 at best)
    assert best.tokens == [4]


def test_decoding_stops_at_max_length_and_reports_unfinished():
    model = _model("additive", "init").eval()
    source, lengths, _ = _batch()
    for h in greedy_decode(model, source, lengths, max_length=2) + beam_decode(model, source, lengths, 3, 2):
        assert len(h.tokens) <= 2
        assert h.finished or len(h.tokens) == 2
        assert h.attention.shape[0] == len(h.tokens) + int(h.finished)


def test_decoding_bad_input_is_named():
    model = _model()
    with pytest.raises(ValueError, match="source token ids"):
        greedy_decode(model, torch.randn(2, 3))
    with pytest.raises(ValueError, match="beam_width"):
        beam_decode(model, torch.ones(1, 2, dtype=torch.long), beam_width=0)
    with pytest.raises(ValueError, match="needs the targets"):
        model(torch.ones(1, 2, dtype=torch.long))
