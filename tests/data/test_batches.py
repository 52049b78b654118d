"""Example datasets: padding, length bucketing, determinism, exact coverage; streams scored target by target."""

import torch

from rnnkit.data.batches import IGNORE_INDEX, ExampleBatches, OnDevice, collate
from rnnkit.data.streams import StreamBatches


def _dataset(n=103, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 40, (n,), generator=g)
    inputs = [torch.randn(int(L), 3, generator=g) for L in lengths]
    return inputs, [int(L) % 4 for L in lengths]


def test_collate_pads_inputs_and_per_step_targets():
    batch = collate([torch.tensor([1, 2, 3]), torch.tensor([4])], [torch.tensor([0, 1, 2]), torch.tensor([3])],
                    {"side": [torch.ones(2), torch.zeros(2)]})
    assert batch.inputs.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch.targets.tolist() == [[0, 1, 2], [3, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch.lengths.tolist() == [3, 1] and batch.num_targets == 4 and batch.num_steps == 4
    assert batch.fields["side"].shape == (2, 2)
    assert batch.model_inputs().keys() == {"lengths", "side"}
    assert collate([torch.tensor([1, 2]), torch.tensor([3, 4])], [0, 1]).lengths is None  # no padding: fast path


def test_an_epoch_is_a_permutation_and_a_pure_function_of_the_step():
    inputs, targets = _dataset()
    data = ExampleBatches(inputs, targets, batch_size=10, seed=3)
    per_epoch = data.chunks_per_epoch
    assert per_epoch == 10
    seen = torch.cat([data.chunk(i).index for i in range(per_epoch)])
    assert len(set(seen.tolist())) == 100  # no example twice; the 3 left over wait for the next epoch
    again = ExampleBatches(inputs, targets, batch_size=10, seed=3)
    for step in (17, 3, 25):  # any order, another object: the same batch
        assert torch.equal(again.chunk(step).inputs, data.chunk(step).inputs)
    assert not torch.equal(data.chunk(0).index, data.chunk(per_epoch).index)  # epochs differ
    other = ExampleBatches(inputs, targets, batch_size=10, seed=4)
    assert not torch.equal(other.chunk(0).index, data.chunk(0).index)


def test_bucketing_keeps_padding_small():
    inputs, targets = _dataset(2000)

    def padding(bucket):
        data = ExampleBatches(inputs, targets, batch_size=16, seed=0, bucket=bucket)
        batches = [data.chunk(i) for i in range(data.chunks_per_epoch)]
        return sum(b.inputs.shape[0] * b.inputs.shape[1] - b.num_steps for b in batches) / sum(
            b.num_steps for b in batches)

    assert padding(bucket=True) < 0.1 < 0.5 < padding(bucket=False)


def test_sequential_covers_every_example_once_and_keeps_each_with_its_target():
    inputs, targets = _dataset()
    data = ExampleBatches(inputs, targets, batch_size=8)
    seen = []
    for batch in data.sequential():
        for r, i in enumerate(batch.index.tolist()):
            n = int(batch.lengths[r]) if batch.lengths is not None else batch.inputs.shape[1]
            assert torch.equal(batch.inputs[r, :n], inputs[i]) and int(batch.targets[r]) == targets[i]
            seen.append(i)
    assert sorted(seen) == list(range(len(inputs)))


def test_on_device_moves_every_batch_and_passes_attributes_through():
    """What ``rnnkit predict`` reads when the model sits on a GPU (the meta device stands in for CUDA here)."""
    inputs, targets = _dataset()
    data = ExampleBatches(inputs, targets, batch_size=8)
    data.trees = ["kept"]
    moved = OnDevice(data, "meta")
    batches = list(moved.sequential())
    assert len(batches) == len(list(data.sequential()))
    assert all(b.inputs.is_meta and b.targets.is_meta for b in batches)
    assert all(not b.lengths.is_meta for b in batches if b.lengths is not None)  # lengths stay on the CPU
    assert moved.trees == ["kept"]


def test_rows_split_a_batch_for_data_parallel_processes():
    inputs, targets = _dataset()
    data = ExampleBatches(inputs, targets, batch_size=8)
    whole = data.chunk(0)
    halves = [data.chunk(0, slice(0, 4)), data.chunk(0, slice(4, 8))]
    assert torch.equal(torch.cat([h.index for h in halves]), whole.index)


def test_stream_cover_all_scores_every_target_exactly_once():
    data = torch.arange(1, 24)  # 23 tokens: 22 targets
    stream = StreamBatches(data, batch_size=4, seq_length=3, shuffle_offset=False, cover_all=True)
    targets = torch.cat([b.targets.reshape(-1) for b in stream.sequential()])
    real = targets[targets != IGNORE_INDEX]
    assert sorted(real.tolist()) == list(range(2, 24))
    for b in stream.sequential():  # each target is the token after its input
        keep = b.targets != IGNORE_INDEX
        assert torch.equal(b.targets[keep], b.inputs[keep] + 1)
