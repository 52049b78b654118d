"""Vanilla RNN, LSTM and GRU in NumPy: one forward step and its backward, written out by hand.

Each ``_step_backward`` receives ∂L/∂(new state) and returns ∂L/∂(previous state) and this step's
parameter gradients; ``ReferenceRNN.backward`` chains them through time.
"""

from __future__ import annotations

import numpy as np

from .base import ReferenceRNN


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class VanillaRNN(ReferenceRNN):
    """Seeds 003/004: a_t = b + W s_{t-1} + U x_t, s_t = tanh(a_t), o_t = c + V s_t.

    Parameters: U (H, D), W (H, H), b (H), V (K, H), c (K).
    """

    def _init_core(self, rng, bound):
        H, D = self.hidden_size, self.input_size
        return {"U": rng.uniform(-bound, bound, (H, D)), "W": rng.uniform(-bound, bound, (H, H)),
                "b": rng.uniform(-bound, bound, H)}

    def _step(self, x_t, state):
        (s_prev,) = state
        p = self.params
        s = np.tanh(p["b"] + p["W"] @ s_prev + self._input_term(p["U"], x_t))
        return (s,), (x_t, s_prev, s)

    def _step_backward(self, cache, dstate):
        x_t, s_prev, s = cache
        (ds,) = dstate
        da = ds * (1 - s ** 2)  # tanh' = 1 - s² (seed 003: DIAG(1 - s²))
        dU = np.zeros_like(self.params["U"])
        self._input_grad(dU, da, x_t)
        grads = {"W": np.outer(da, s_prev), "U": dU, "b": da}
        return (self.params["W"].T @ da,), grads


class LSTM(ReferenceRNN):
    """Seed 000: (i, f, g, o) = (σ, σ, tanh, σ)(W_x x_t + W_h h_{t-1} + b); c_t = f c_{t-1} + i g;
    h_t = o tanh(c_t). Gates stacked i, f, g, o (torch's order).

    Parameters: Wx (4H, D), Wh (4H, H), b (4H), V, c. State (h, c).
    """

    def _init_core(self, rng, bound):
        H, D = self.hidden_size, self.input_size
        return {"Wx": rng.uniform(-bound, bound, (4 * H, D)), "Wh": rng.uniform(-bound, bound, (4 * H, H)),
                "b": rng.uniform(-bound, bound, 4 * H)}

    def initial_state(self):
        return (np.zeros(self.hidden_size), np.zeros(self.hidden_size))

    def _step(self, x_t, state):
        h_prev, c_prev = state
        p = self.params
        a = self._input_term(p["Wx"], x_t) + p["Wh"] @ h_prev + p["b"]
        ai, af, ag, ao = np.split(a, 4)
        i, f, g, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)
        c = f * c_prev + i * g
        tc = np.tanh(c)
        h = o * tc
        return (h, c), (x_t, h_prev, c_prev, i, f, g, o, tc)

    def _step_backward(self, cache, dstate):
        x_t, h_prev, c_prev, i, f, g, o, tc = cache
        dh, dc = dstate
        do = dh * tc
        dc = dc + dh * o * (1 - tc ** 2)  # c_t reaches L through h_t and through c_{t+1}
        di, df, dg = dc * g, dc * c_prev, dc * i
        da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)])
        dWx = np.zeros_like(self.params["Wx"])
        self._input_grad(dWx, da, x_t)
        grads = {"Wx": dWx, "Wh": np.outer(da, h_prev), "b": da}
        return (self.params["Wh"].T @ da, dc * f), grads


class GRU(ReferenceRNN):
    """Seed 000 (Cho et al. 2014, reset before the product; rnnkit's ``ChoGRUCell``)::

        r = σ(W_xr x + W_hr h + b_r),  z = σ(W_xz x + W_hz h + b_z)
        h̃ = tanh(W_xh x + W_hh (r ⊙ h) + b_h),  h_t = z ⊙ h_{t-1} + (1 - z) ⊙ h̃

    Parameters: Wx (3H, D) = [W_xr; W_xz; W_xh], Whrz (2H, H) = [W_hr; W_hz], Whh (H, H), b (3H), V, c.
    """

    def _init_core(self, rng, bound):
        H, D = self.hidden_size, self.input_size
        return {"Wx": rng.uniform(-bound, bound, (3 * H, D)), "Whrz": rng.uniform(-bound, bound, (2 * H, H)),
                "Whh": rng.uniform(-bound, bound, (H, H)), "b": rng.uniform(-bound, bound, 3 * H)}

    def _step(self, x_t, state):
        (h_prev,) = state
        p, H = self.params, self.hidden_size
        ax = self._input_term(p["Wx"], x_t) + p["b"]
        arz = ax[: 2 * H] + p["Whrz"] @ h_prev
        r, z = sigmoid(arz[:H]), sigmoid(arz[H:])
        rh = r * h_prev
        h_tilde = np.tanh(ax[2 * H:] + p["Whh"] @ rh)
        h = z * h_prev + (1 - z) * h_tilde
        return (h,), (x_t, h_prev, r, z, rh, h_tilde)

    def _step_backward(self, cache, dstate):
        x_t, h_prev, r, z, rh, h_tilde = cache
        (dh,) = dstate
        p = self.params
        dz = dh * (h_prev - h_tilde)
        da_h = dh * (1 - z) * (1 - h_tilde ** 2)  # through h̃
        drh = p["Whh"].T @ da_h
        dr = drh * h_prev
        da_rz = np.concatenate([dr * r * (1 - r), dz * z * (1 - z)])
        dh_prev = dh * z + drh * r + p["Whrz"].T @ da_rz
        da_x = np.concatenate([da_rz, da_h])
        dWx = np.zeros_like(p["Wx"])
        self._input_grad(dWx, da_x, x_t)
        grads = {"Wx": dWx, "Whrz": np.outer(da_rz, h_prev), "Whh": np.outer(da_h, rh), "b": da_x}
        return (dh_prev,), grads
