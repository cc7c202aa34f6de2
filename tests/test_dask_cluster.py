"""convt.dask on embedded distributed clusters (LocalCluster, worker processes and worker
threads): equal to convt.functional, the same bits as the threaded scheduler, data-parallel
training equal to the same steps on one machine, and a volume that lives in zarr stores on disk
convolved chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip(
    "dask.array", reason="convt.dask needs the dask extra: pip install 'convt[dask]'"
)
distributed = pytest.importorskip(
    "distributed", reason="clusters need the dask extra: pip install 'convt[dask]'"
)

import dask  # noqa: E402
from conftest import assert_close  # noqa: E402
from convt import dask as cd  # noqa: E402
from convt import functional, nn, optim  # noqa: E402

rng = np.random.default_rng(31)


@pytest.fixture(scope="module", params=[True, False], ids=["processes", "threads"])
def client(request):
    """A two-worker cluster on this machine, one thread per worker, as the active scheduler."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=request.param,
            dashboard_address=":0",
            memory_limit="2GiB",
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def on_cluster(client):
    with dask.config.set(scheduler=client):
        yield client


def test_spatially_and_batch_chunked_calls_equal_functional(on_cluster):
    x = rng.standard_normal((3, 4, 13, 10, 9)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 4, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    args = dict(stride=(2, 1, 3), padding=(1, 2, 0), dilation=(1, 2, 1), groups=2)
    lazy_x = da.from_array(x, chunks=(2, 4, 5, 4, 5))
    y = cd.conv3d(lazy_x, w, b, **args)
    assert_close(y.compute(), functional.conv3d(x, w, b, **args), np.float32)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    grads = dask.compute(*cd.conv3d_backward(da.from_array(dy, chunks=y.chunks), lazy_x, w, **args))
    for got, want in zip(grads, functional.conv3d_backward(dy, x, w, **args), strict=True):
        assert_close(got, want, np.float32)

    t_args = dict(stride=2, padding=1, output_padding=(1, 0), dilation=(1, 2))
    yt = rng.standard_normal((4, 4, 7, 6))
    wt = rng.standard_normal((4, 3, 4, 3))
    lazy_y = da.from_array(yt, chunks=(2, 4, 3, 2))
    out = cd.conv_transpose2d(lazy_y, wt, None, **t_args)
    assert_close(out.compute(), functional.conv_transpose2d(yt, wt, None, **t_args), np.float64)
    dx = rng.standard_normal(out.shape)
    lazy = cd.conv_transpose2d_backward(
        da.from_array(dx, chunks=(1, 3, 5, 5)), lazy_y, wt, **t_args
    )
    expected = functional.conv_transpose2d_backward(dx, yt, wt, **t_args)
    for got, want in zip(dask.compute(*lazy), expected, strict=True):
        assert_close(got, want, np.float64)


def test_gradients_are_the_same_bits_on_the_cluster_and_on_threads(on_cluster):
    x = rng.standard_normal((6, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((3, 5, 4, 4)).astype(np.float32)
    lazy_x = da.from_array(x, chunks=(2, 3, 8, 8))
    dx = rng.standard_normal((6, 5, 32, 32)).astype(np.float32)
    lazy_dx = da.from_array(dx, chunks=(2, 5, 16, 16))
    lazy = cd.conv_transpose2d_backward(lazy_dx, lazy_x, w, stride=2, padding=1, split_every=3)
    on_cluster_grads = dask.compute(*lazy)
    threaded = dask.compute(*lazy, scheduler="threads")
    for got, again in zip(on_cluster_grads, threaded, strict=True):
        np.testing.assert_array_equal(got, again)


def model_and_data():
    nn.manual_seed(5)
    model = nn.Sequential(
        nn.ConvTranspose2d(1, 4, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 1, 3, padding=1),
    )
    x = rng.standard_normal((16, 1, 6, 6))
    target = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)  # learn to upsample
    return model, x, target


def test_data_parallel_training_equals_the_same_steps_on_one_machine(on_cluster):
    steps = 10
    model, x, target = model_and_data()
    loss_fn = nn.MSELoss()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    lazy_x = da.from_array(x, chunks=(4, 1, 6, 6))
    lazy_target = da.from_array(
        target, chunks=(5, 1, 12, 12)
    )  # rechunked to the input's batch chunks
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        losses.append(cd.backward(model, loss_fn, lazy_x, lazy_target))
        opt.step()

    alone, _, _ = model_and_data()
    opt_alone = optim.SGD(alone.parameters(), lr=0.1, momentum=0.9)
    expected = []
    for _ in range(steps):
        opt_alone.zero_grad()
        expected.append(loss_fn(alone(x), target))
        alone.backward(loss_fn.backward())
        opt_alone.step()

    # float32 parameters: the chunks' gradients add up in another order than one call's.
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert losses[-1] < 0.5 * losses[0], "the loss falls"
    for (key, got), (_, want) in zip(
        model.state_dict().items(), alone.state_dict().items(), strict=True
    ):
        assert_close(got, want, np.float32, key)


def test_a_volume_in_zarr_stores_is_convolved_chunk_by_chunk(on_cluster, tmp_path):
    zarr = pytest.importorskip("zarr", reason="zarr stores need the dask extra")
    shape, chunk = (40, 48, 36), 16
    volume = da.random.default_rng(3).standard_normal(shape, chunks=chunk, dtype=np.float32)
    da.to_zarr(volume, str(tmp_path / "volume.zarr"))
    stored = da.from_zarr(str(tmp_path / "volume.zarr"))
    assert stored.numblocks == (3, 3, 3)

    w = rng.standard_normal((1, 1, 3, 5, 3)).astype(np.float32)
    b = np.array([0.5], np.float32)
    result = cd.conv3d(stored[None, None], w, b, stride=(1, 2, 1), padding=(1, 2, 0))[0, 0]
    # A valid convolution's chunks shift by half its kernel; zarr wants them regular.
    result = result.rechunk((16, 8, 16))
    da.to_zarr(result, str(tmp_path / "result.zarr"))

    x = zarr.open_array(str(tmp_path / "volume.zarr"), mode="r")
    out = zarr.open_array(str(tmp_path / "result.zarr"), mode="r")
    assert out.shape == (40, 24, 34)
    bounds = [np.cumsum((0, *sizes)) for sizes in result.chunks]
    # A corner chunk, an edge chunk and the middle one, each against functional.conv3d on the
    # neighbourhood its outputs read (padding only where that reaches past the volume).
    for block in ((0, 0, 0), (2, 1, 0), (1, 1, 1)):
        (z0, z1), (y0, y1), (x0, x1) = (
            (b[i], b[i + 1]) for b, i in zip(bounds, block, strict=True)
        )
        lo = (z0 - 1, 2 * y0 - 2, x0)
        hi = (z1 + 1, 2 * (y1 - 1) + 3, x1 + 2)
        pad = [
            (max(0, -low), max(0, high - size))
            for low, high, size in zip(lo, hi, shape, strict=True)
        ]
        window = x[
            tuple(
                slice(max(0, low), min(high, size))
                for low, high, size in zip(lo, hi, shape, strict=True)
            )
        ]
        window = np.pad(window, pad)
        expected = functional.conv3d(window[None, None], w, b, stride=(1, 2, 1))[0, 0]
        assert_close(np.asarray(out[z0:z1, y0:y1, x0:x1]), expected, np.float32, str(block))
