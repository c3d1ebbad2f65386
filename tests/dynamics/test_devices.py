"""Devices (dynamics/devices.py) on one process: `put` pads the member axis to the device count by repeating the last
member and `gather` returns it whole; typed keys travel as key data; the cache directory is keyed by jax's version.
(Several devices and hosts: tests/dynamics/test_scale.py, in subprocesses.)"""

import jax
import numpy as np

from dynamics import devices


def test_put_then_gather_returns_the_members_and_the_padding_repeats_the_last():
    devs = devices.sweep_devices()
    x = np.arange(5.0 * len(devs) + 1).reshape(-1, 1)  # one more member than a multiple of the device count
    back = devices.gather(devices.put({"x": x}, devs))["x"]
    np.testing.assert_array_equal(back[: len(x)], x)
    assert len(back) % len(devs) == 0 and np.all(back[len(x):] == x[-1])


def test_typed_keys_travel_as_their_key_data():
    keys = jax.random.split(jax.random.key(3), 4)
    placed = devices.put(keys, devices.sweep_devices())
    assert jax.dtypes.issubdtype(placed.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(devices.gather(placed)[:4], np.asarray(jax.random.key_data(keys)))


def test_one_process_writes_and_the_cache_is_keyed_by_jax_version():
    assert devices.is_writer()
    assert f"jax-{jax.__version__}-" in devices.default_cache_dir()
