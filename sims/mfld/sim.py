"""`mfld` dynamics: M independent systems of N particles under noisy gradient descent (the paper's eq. 3), the
observables recorded along the way, and the theory carried beside them.

    x^i <- x^i - eta [ (1/n) sum_j d1l(f_rho(z_j), y_j) grad_x h(x^i, z_j) + 2 lambda' x^i ] + sqrt(2 lambda eta) xi^i
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from configs.mfld import Config
from dynamics import langevin, sweep, trajectory
from sims.mfld import data as data_lib
from sims.mfld import model, theory

__all__ = ["State", "SIMULATION", "SPEC", "simulate"]


class State(NamedTuple):
    """data: the training and test data; particles: the ParticleState of (M, N, p) particles;
    theory: the config's closed-form theory (`_oracle`), computed once at init and constant along the run."""
    data: data_lib.Data
    particles: langevin.ParticleState
    theory: dict


def _dynamics(config: Config, data: data_lib.Data, oracle: dict):
    """Noisy GD on the first variation; with an oracle, on the interpolation (1-s) dF0/dmu(mu*) + s dF0/dmu(rho) of
    thermodynamic integration (s = config.interpolation; s = 1 is mean-field Langevin itself)."""
    z, y = data.z_train, data.y_train

    def drift(x):
        current = model.first_variation_grad(config, x, z, y)
        if config.model == "tanh" or config.loss != "squared":
            return current
        fixed = model.potential_grad(config, x, z, (oracle["theory_f_star"] - y) / z.shape[0])  # g*_j / n
        return config.interpolation * current + (1 - config.interpolation) * fixed

    return langevin.particle_dynamics(jax.vmap(drift), langevin.noisy_gd(config.lr, config.temperature, config.l2))


def _oracle(config: Config, data: data_lib.Data) -> dict[str, Any]:
    """The config's closed-form theory: a dict of theory_* values (NaN where no oracle applies)."""
    nan = jnp.full((), jnp.nan, jnp.result_type(float))
    out = {name: nan for name in ("theory_loss", "theory_objective", "theory_model_error", "theory_bregman",
                                  "theory_particle_variance", "theory_dual", "theory_relaxation_rate",
                                  "theory_free_energy_gap", "theory_optimum_loss", "theory_optimum_objective")}
    out["theory_f_star"] = jnp.full_like(data.y_train, jnp.nan)
    out["theory_mean"] = jnp.full((model.param_dim(config),), jnp.nan, nan.dtype)
    out["theory_mean_cov"] = jnp.full((model.param_dim(config),) * 2, jnp.nan, nan.dtype)
    squared = config.loss == "squared"
    if config.model == "linear" and squared:
        o = theory.linear_oracle(config, data.z_train, data.y_train)
        out.update(theory_loss=o.loss, theory_objective=o.objective, theory_model_error=o.model_error,
                   theory_bregman=o.bregman, theory_particle_variance=o.particle_variance, theory_dual=o.free_energy,
                   theory_relaxation_rate=o.relaxation_rate, theory_free_energy_gap=o.free_energy_gap,
                   theory_f_star=o.f_star, theory_mean=o.mean, theory_mean_cov=o.mean_cov,
                   theory_optimum_loss=o.optimum_loss, theory_optimum_objective=o.optimum_objective)
    elif config.model == "tanh2d" and squared:
        o = theory.quadrature_optimum(config, data.z_train, data.y_train)
        out.update(theory_optimum_loss=o.loss, theory_optimum_objective=o.objective, theory_dual=o.free_energy,
                   theory_f_star=o.f_star)
    if squared:  # Lemma 1 turns the B/N free-energy bound into a model-error bound for squared loss only
        out["bound_model_error"] = jnp.asarray(2 * theory.chaos_constant(config) / config.particles, nan.dtype)
    else:
        out["bound_model_error"] = nan
    return out


def _own(config: Config, key):
    """Networks of different sizes draw independent randomness: threefry's counter layout would otherwise make the
    first N particles of a larger network at the same seed share every draw with an N-particle one."""
    return jax.random.fold_in(key, config.particles)


def init(config: Config, key) -> State:
    data = data_lib.make_data(config)
    oracle = _oracle(config, data)
    init_fn, _ = _dynamics(config, data, oracle)
    return State(data, init_fn(model.init_particles(config, _own(config, key))), oracle)


def step(config: Config, state: State, key) -> State:
    _, step_fn = _dynamics(config, state.data, state.theory)
    return state._replace(particles=step_fn(state.particles, _own(config, key)))


def _dual(config: Config, g_n, data: data_lib.Data):
    if config.loss != "squared" or config.model == "tanh":
        return jnp.full((), jnp.nan, g_n.dtype)
    dual = theory.dual_linear if config.model == "linear" else theory.dual_quadrature
    return dual(config, g_n, data.z_train, data.y_train)


def record(config: Config, state: State) -> dict[str, jax.Array]:
    """Observables of the ensemble predictor f_ens = (1/M) sum_m f_{rho_m} (the mixture of the M systems).

    loss: F0(f_ens) on the training data. objective: F = F0 + E r over all M N particles. model_error:
    mean_j (f_ens(z_j) - f*(z_j))^2 where f* is known. dual: D(g) at g_j = d1l(f_ens(z_j), y_j), a lower bound on
    L(mu*). bregman: B_F0(rho_m, mu*) = (1/2n) sum_j (f_{rho_m}(z_j) - f*(z_j))^2 averaged over the M systems, the
    integrand of thermodynamic integration (Lemma 1). test_loss: F0 on the test data. ensemble_variance: mean_j of
    the unbiased variance of f_{rho_m}(z_j) across
    the M systems (NaN for M = 1). particle_mean: (M, p) each system's mean particle. particle_variance: (M,) each
    system's per-coordinate variance of the particles about that mean.
    """
    x = state.particles.params
    d = state.data
    f_Mn = model.predict(config, x, d.z_train)
    f_ens = jnp.mean(f_Mn, axis=0)
    loss = jnp.mean(model.loss_value(config, f_ens, d.y_train))
    test_loss = jnp.mean(model.loss_value(config, jnp.mean(model.predict(config, x, d.z_test), axis=0), d.y_test))
    mean_MP = jnp.mean(x, axis=1)
    M = config.ensemble
    spread = jnp.mean(jnp.sum((f_Mn - f_ens) ** 2, axis=0) / (M - 1)) if M > 1 else jnp.full((), jnp.nan, x.dtype)
    return dict(loss=loss,
                bregman=jnp.mean((f_Mn - state.theory["theory_f_star"]) ** 2) / 2,
                objective=loss + config.l2 * jnp.mean(jnp.sum(x ** 2, axis=-1)),
                model_error=jnp.mean((f_ens - state.theory["theory_f_star"]) ** 2),
                dual=_dual(config, model.loss_slope(config, f_ens, d.y_train), d),
                test_loss=test_loss,
                ensemble_variance=spread,
                particle_mean=mean_MP,
                particle_variance=jnp.mean((x - mean_MP[:, None, :]) ** 2, axis=(1, 2)))


def final(config: Config, state: State) -> dict[str, jax.Array]:
    """The final particles, each system's test predictions f_{rho_m}(z) (M, n_test), the data and the theory."""
    d = state.data
    return dict(final_particles=state.particles.params,
                test_prediction=model.predict(config, state.particles.params, d.z_test),
                z_train=d.z_train, y_train=d.y_train, z_test=d.z_test, y_test=d.y_test, **state.theory)


SIMULATION = trajectory.Simulation(init, step, record, final, watch=lambda state: state.particles)

def workspace(config: Config) -> int:
    """Bytes of a step's and a record's temporaries: about four (M, N, n) activation arrays on the training data
    (pre-activations, tanh, their pullback, the gradient's product) and one on the test data; for tanh2d, about
    eight (grid, grid) tables of mu*'s quadrature (Newton's moments, the dual recorded at every record)."""
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    quadrature = 8 * theory.GRID_POINTS ** 2 if config.model == "tanh2d" else 0
    return itemsize * (4 * config.ensemble * config.particles * (config.samples + config.test_samples) + quadrature)


SPEC = sweep.Spec(
    name="mfld",
    config_cls=Config,
    simulation=SIMULATION,
    dims=dict(final_particles=("system", "particle", "coordinate"), test_prediction=("system", "test_sample"),
              z_train=("sample", "feature"), y_train=("sample",),
              z_test=("test_sample", "feature"), y_test=("test_sample",), theory_f_star=("sample",),
              theory_mean=("coordinate",), theory_mean_cov=("coordinate", "coordinate_"),
              particle_mean=("system", "coordinate"), particle_variance=("system",)),
    seedless=frozenset({"z_train", "y_train", "z_test", "y_test", "theory_loss", "theory_objective",
                        "theory_model_error", "theory_bregman", "theory_particle_variance", "theory_dual",
                        "theory_relaxation_rate",
                        "theory_free_energy_gap", "theory_f_star", "theory_mean", "theory_mean_cov",
                        "theory_optimum_loss", "theory_optimum_objective",
                        "bound_model_error"}),
    workspace=workspace,
)


def simulate(config: Config, key) -> dict[str, jax.Array]:
    """One whole run as a pure function that `jax.jit` and `jax.vmap` take: final outputs and stacked records."""
    return trajectory.simulate(SIMULATION, config, key, steps=config.steps, record_every=config.record_every)
