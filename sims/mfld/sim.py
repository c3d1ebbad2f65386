"""`mfld` dynamics: M independent systems of N particles under noisy gradient descent (the paper's eq. 3), the
observables recorded along the way, and the theory carried beside them.

    x^i <- x^i - eta [ (1/n) sum_j d1l(f_rho(z_j), y_j) grad_x h(x^i, z_j) + 2 lambda' x^i ] + sqrt(2 lambda eta) xi^i
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from configs.mfld import Config
from dynamics import langevin
from dynamics.simulator import Output, prediction
from sims.mfld import data as data_lib
from sims.mfld import model, theory

__all__ = ["Context", "OUTPUTS", "final", "init", "record", "setup", "step", "workspace"]


class Context(NamedTuple):
    """The constants of a run: data, the training and test data; theory, the config's closed-form theory (`_oracle`),
    computed once by `setup` and passed beside the particles, never carried in the scan."""
    data: data_lib.Data
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


def setup(config: Config, key) -> Context:
    """The data (from `data_seed`, the same for every seed) and the oracle's closed forms."""
    del key
    data = data_lib.make_data(config)
    return Context(data, _oracle(config, data))


def init(config: Config, context: Context, key) -> langevin.ParticleState:
    """M systems of N particles x ~ N(0, init_scale^2 I) (M, N, p)."""
    init_fn, _ = _dynamics(config, context.data, context.theory)
    return init_fn(model.init_particles(config, _own(config, key)))


def step(config: Config, context: Context, particles: langevin.ParticleState, key) -> langevin.ParticleState:
    _, step_fn = _dynamics(config, context.data, context.theory)
    return step_fn(particles, _own(config, key))


def _dual(config: Config, g_n, data: data_lib.Data):
    if config.loss != "squared" or config.model == "tanh":
        return jnp.full((), jnp.nan, g_n.dtype)
    dual = theory.dual_linear if config.model == "linear" else theory.dual_quadrature
    return dual(config, g_n, data.z_train, data.y_train)


def record(config: Config, context: Context, particles: langevin.ParticleState) -> dict[str, jax.Array]:
    """Observables of the ensemble predictor f_ens = (1/M) sum_m f_{rho_m} (the mixture of the M systems).

    loss: F0(f_ens) on the training data. objective: F = F0 + E r over all M N particles. model_error:
    mean_j (f_ens(z_j) - f*(z_j))^2 where f* is known. dual: D(g) at g_j = d1l(f_ens(z_j), y_j), a lower bound on
    L(mu*). bregman: B_F0(rho_m, mu*) = (1/2n) sum_j (f_{rho_m}(z_j) - f*(z_j))^2 averaged over the M systems, the
    integrand of thermodynamic integration (Lemma 1). test_loss: F0 on the test data. ensemble_variance: mean_j of
    the unbiased variance of f_{rho_m}(z_j) across
    the M systems (NaN for M = 1). particle_mean: (M, p) each system's mean particle. particle_variance: (M,) each
    system's per-coordinate variance of the particles about that mean.
    """
    x = particles.params
    d = context.data
    f_Mn = model.predict(config, x, d.z_train)
    f_ens = jnp.mean(f_Mn, axis=0)
    loss = jnp.mean(model.loss_value(config, f_ens, d.y_train))
    test_loss = jnp.mean(model.loss_value(config, jnp.mean(model.predict(config, x, d.z_test), axis=0), d.y_test))
    mean_MP = jnp.mean(x, axis=1)
    M = config.ensemble
    spread = jnp.mean(jnp.sum((f_Mn - f_ens) ** 2, axis=0) / (M - 1)) if M > 1 else jnp.full((), jnp.nan, x.dtype)
    return dict(loss=loss,
                bregman=jnp.mean((f_Mn - context.theory["theory_f_star"]) ** 2) / 2,
                objective=loss + config.l2 * jnp.mean(jnp.sum(x ** 2, axis=-1)),
                model_error=jnp.mean((f_ens - context.theory["theory_f_star"]) ** 2),
                dual=_dual(config, model.loss_slope(config, f_ens, d.y_train), d),
                test_loss=test_loss,
                ensemble_variance=spread,
                particle_mean=mean_MP,
                particle_variance=jnp.mean((x - mean_MP[:, None, :]) ** 2, axis=(1, 2)))


def final(config: Config, context: Context, particles: langevin.ParticleState) -> dict[str, jax.Array]:
    """The final particles, each system's test predictions f_{rho_m}(z) (M, n_test), the data and the theory."""
    d = context.data
    return dict(final_particles=particles.params, test_prediction=model.predict(config, particles.params, d.z_test),
                z_train=d.z_train, y_train=d.y_train, z_test=d.z_test, y_test=d.y_test, **context.theory)


def workspace(config: Config) -> int:
    """Bytes of a step's and a record's temporaries: about four (M, B, n) activation arrays on the training data
    (pre-activations, tanh, their pullback, the gradient's product) and one on the test data, with B particles per
    block (`model.particle_block`: N unless the tanh neuron is blocked); for tanh2d, about eight (grid, grid) tables
    of mu*'s quadrature (Newton's moments, the dual recorded at every record)."""
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    quadrature = 8 * theory.GRID_POINTS ** 2 if config.model == "tanh2d" else 0
    train = 4 * model.particle_block(config, config.samples) * config.samples
    test = 4 * model.particle_block(config, config.test_samples) * config.test_samples
    return itemsize * (config.ensemble * (train + test) + quadrature)


OUTPUTS = {
    "loss": Output("training loss F0(f_ens) of the ensemble predictor"),
    "objective": Output("objective F = F0(f_ens) + lambda' E|x|^2 over all M N particles"),
    "model_error": Output("model error mean_j (f_ens(z_j) - f*(z_j))^2"),
    "bregman": Output("Bregman divergence B_F0(rho_m, mu*), averaged over the M systems"),
    "dual": Output("dual objective D(g) at g_j = d1l(f_ens(z_j), y_j), a lower bound on L(mu*)"),
    "test_loss": Output("test loss F0(f_ens) on the test data"),
    "ensemble_variance": Output("variance of f_rho_m(z_j) across the M systems, mean over j (NaN for M = 1)"),
    "particle_mean": Output("each system's mean particle", dims=("system", "coordinate")),
    "particle_variance": Output("each system's per-coordinate particle variance", dims=("system",)),
    "final_particles": Output("particles at the last step", dims=("system", "particle", "coordinate")),
    "test_prediction": Output("each system's test predictions f_rho_m(z)", dims=("system", "test_sample")),
    "z_train": Output("training inputs", dims=("sample", "feature"), seedless=True),
    "y_train": Output("training targets", dims=("sample",), seedless=True),
    "z_test": Output("test inputs", dims=("test_sample", "feature"), seedless=True),
    "y_test": Output("test targets", dims=("test_sample",), seedless=True),
    "theory_loss": prediction("stationary F0 of the ensemble (linear oracle)", predicts="loss"),
    "theory_objective": prediction("stationary objective (linear oracle)", predicts="objective"),
    "theory_model_error": prediction("stationary model error (linear oracle)", predicts="model_error"),
    "theory_bregman": prediction("stationary Bregman divergence (linear oracle)", predicts="bregman"),
    "theory_particle_variance": prediction("stationary per-coordinate particle variance (linear oracle)",
                                           predicts="particle_variance"),
    "theory_dual": prediction("L(mu*) = max D, the optimal entropic objective", predicts="dual"),
    "theory_relaxation_rate": prediction("relaxation rate of the fluctuation variance, -2 log|1 - 2 lambda' eta| / eta "
                                         "(linear oracle)", units="1/time"),
    "theory_free_energy_gap": prediction("Delta_N = (lambda / 2N) sum_k log(1 + gamma_k), the particle free-energy "
                                         "gap (linear oracle)"),
    "theory_f_star": prediction("f* = f_mu* on the training inputs", dims=("sample",)),
    "theory_mean": prediction("mean of mu* (linear oracle)", predicts="particle_mean", dims=("coordinate",)),
    "theory_mean_cov": prediction("covariance of the mean particle (linear oracle)",
                                  dims=("coordinate", "coordinate_")),
    "theory_optimum_loss": prediction("F0(mu*), the optimum's loss"),
    "theory_optimum_objective": prediction("F0(mu*) + lambda' E_mu* |x|^2, the optimum's objective"),
    "bound_model_error": prediction("2B/N: Lemma 1's bound on the model error from the free-energy bound",
                                    predicts="model_error"),
}
