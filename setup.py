"""Training-dynamics simulation: JAX simulators of ML-theory papers beside their closed-form theory."""

from setuptools import find_packages, setup

setup(
    name="training-dynamics-sim",
    version="0.1.0",
    description="Vectorized, jit-compiled training-dynamics simulators set beside their papers' theory",
    python_requires=">=3.11",
    packages=find_packages(include=["dynamics", "dynamics.*", "sims", "sims.*", "configs", "configs.*"]),
    py_modules=["run", "gallery"],
    entry_points={"console_scripts": ["training-dynamics=run:cli"]},
    install_requires=[
        # jax 0.10.2 silently miscompiles a vmapped mat-vec followed by a reduction on CPU (jax-ml/jax#39103);
        # tests/test_jax_regression.py fails on a bad jax instead of letting it corrupt sweeps.
        "jax>=0.10.1,!=0.10.2,!=0.11.1",
        "jaxlib>=0.10.1,!=0.10.2,!=0.11.1",
        "flax>=0.12",
        "optax>=0.2.4",
        "numpy>=1.26",
        "chex>=0.1.90",
        "absl-py>=2.0",
        "scipy>=1.12",
        "xarray>=2024.1",
        "h5netcdf>=1.3",
        "h5py>=3.10",
        "matplotlib>=3.8",
        # The exact max-margin references of implicit_bias: the spectral margin is an SDP, the SVM a QP (Clarabel).
        "cvxpy>=1.5",
        # rft_vanishing_gradients' `digits` preset: scikit-learn's bundled 8x8 digits (no download); imported lazily.
        "scikit-learn>=1.3",
    ],
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.5"]},
)
