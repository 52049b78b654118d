"""Pyro's deep Markov model (pyro-ppl examples/dmm.py, Apache-2.0: the same networks, model, guide and SVI with
Trace_ELBO and ClippedAdam), written out here so ``bench_music.py --mode speed`` can time it beside rnnkit's on the
same batches. Needs ``pip install pyro-ppl``."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.layers.recurrent import reverse_padded


class Emitter(nn.Module):
    def __init__(self, input_dim, z_dim, emission_dim):
        super().__init__()
        self.lin_z_to_hidden = nn.Linear(z_dim, emission_dim)
        self.lin_hidden_to_hidden = nn.Linear(emission_dim, emission_dim)
        self.lin_hidden_to_input = nn.Linear(emission_dim, input_dim)

    def forward(self, z_t):
        h1 = torch.relu(self.lin_z_to_hidden(z_t))
        h2 = torch.relu(self.lin_hidden_to_hidden(h1))
        return torch.sigmoid(self.lin_hidden_to_input(h2))


class GatedTransition(nn.Module):
    def __init__(self, z_dim, transition_dim):
        super().__init__()
        self.lin_gate_z_to_hidden = nn.Linear(z_dim, transition_dim)
        self.lin_gate_hidden_to_z = nn.Linear(transition_dim, z_dim)
        self.lin_proposed_mean_z_to_hidden = nn.Linear(z_dim, transition_dim)
        self.lin_proposed_mean_hidden_to_z = nn.Linear(transition_dim, z_dim)
        self.lin_sig = nn.Linear(z_dim, z_dim)
        self.lin_z_to_loc = nn.Linear(z_dim, z_dim)
        self.lin_z_to_loc.weight.data = torch.eye(z_dim)
        self.lin_z_to_loc.bias.data = torch.zeros(z_dim)

    def forward(self, z_t_1):
        gate = torch.sigmoid(self.lin_gate_hidden_to_z(torch.relu(self.lin_gate_z_to_hidden(z_t_1))))
        proposed_mean = self.lin_proposed_mean_hidden_to_z(torch.relu(self.lin_proposed_mean_z_to_hidden(z_t_1)))
        loc = (1 - gate) * self.lin_z_to_loc(z_t_1) + gate * proposed_mean
        return loc, nn.functional.softplus(self.lin_sig(torch.relu(proposed_mean)))


class Combiner(nn.Module):
    def __init__(self, z_dim, rnn_dim):
        super().__init__()
        self.lin_z_to_hidden = nn.Linear(z_dim, rnn_dim)
        self.lin_hidden_to_loc = nn.Linear(rnn_dim, z_dim)
        self.lin_hidden_to_scale = nn.Linear(rnn_dim, z_dim)

    def forward(self, z_t_1, h_rnn):
        h_combined = 0.5 * (torch.tanh(self.lin_z_to_hidden(z_t_1)) + h_rnn)
        return self.lin_hidden_to_loc(h_combined), nn.functional.softplus(self.lin_hidden_to_scale(h_combined))


class PyroDMM(nn.Module):
    def __init__(self, input_dim=88, z_dim=100, emission_dim=100, transition_dim=200, rnn_dim=600):
        super().__init__()
        self.emitter = Emitter(input_dim, z_dim, emission_dim)
        self.trans = GatedTransition(z_dim, transition_dim)
        self.combiner = Combiner(z_dim, rnn_dim)
        self.rnn = nn.RNN(input_size=input_dim, hidden_size=rnn_dim, nonlinearity="relu", batch_first=True)
        self.z_0 = nn.Parameter(torch.zeros(z_dim))
        self.z_q_0 = nn.Parameter(torch.zeros(z_dim))
        self.h_0 = nn.Parameter(torch.zeros(1, 1, rnn_dim))

    def model(self, mini_batch, mini_batch_reversed, mini_batch_mask, lengths, annealing_factor=1.0):
        T_max = mini_batch.size(1)
        pyro.module("dmm", self)
        z_prev = self.z_0.expand(mini_batch.size(0), self.z_0.size(0))
        with pyro.plate("z_minibatch", len(mini_batch)):
            for t in pyro.markov(range(1, T_max + 1)):
                z_loc, z_scale = self.trans(z_prev)
                with poutine.scale(scale=annealing_factor):
                    z_t = pyro.sample(f"z_{t}", dist.Normal(z_loc, z_scale).mask(mini_batch_mask[:, t - 1:t])
                                      .to_event(1))
                probs = self.emitter(z_t)
                pyro.sample(f"obs_x_{t}", dist.Bernoulli(probs).mask(mini_batch_mask[:, t - 1:t]).to_event(1),
                            obs=mini_batch[:, t - 1, :])
                z_prev = z_t

    def guide(self, mini_batch, mini_batch_reversed, mini_batch_mask, lengths, annealing_factor=1.0):
        T_max = mini_batch.size(1)
        pyro.module("dmm", self)
        h_0 = self.h_0.expand(1, mini_batch.size(0), self.rnn.hidden_size).contiguous()
        packed = pack_padded_sequence(mini_batch_reversed, lengths, batch_first=True, enforce_sorted=False)
        rnn_output, _ = self.rnn(packed, h_0)
        rnn_output = reverse_padded(pad_packed_sequence(rnn_output, batch_first=True, total_length=T_max)[0],
                                    lengths)
        z_prev = self.z_q_0.expand(mini_batch.size(0), self.z_q_0.size(0))
        with pyro.plate("z_minibatch", len(mini_batch)):
            for t in pyro.markov(range(1, T_max + 1)):
                z_loc, z_scale = self.combiner(z_prev, rnn_output[:, t - 1, :])
                with pyro.poutine.scale(scale=annealing_factor):
                    z_t = pyro.sample(f"z_{t}", dist.Normal(z_loc, z_scale).mask(mini_batch_mask[:, t - 1:t])
                                      .to_event(1))
                z_prev = z_t


def pyro_step(model: PyroDMM):
    """One SVI update on an rnnkit Batch, as examples/dmm.py takes them (its default optimiser settings)."""
    pyro.clear_param_store()
    svi = SVI(model.model, model.guide, ClippedAdam({"lr": 3e-4, "betas": (0.96, 0.999), "clip_norm": 10.0,
                                                      "lrd": 0.99996, "weight_decay": 2.0}), loss=Trace_ELBO())

    def step(batch):
        x = batch.inputs
        lengths = batch.lengths if batch.lengths is not None else torch.full((len(x),), x.shape[1])
        mask = (torch.arange(x.shape[1])[None] < lengths[:, None]).float()
        return svi.step(x, reverse_padded(x, lengths), mask, lengths)

    return step
