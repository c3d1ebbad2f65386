"""The engine: it runs any simulator declared to it, and knows no paper.

Modules (each imports on its own; `files`, `stats` and `config` are leaves):
    config      documented, validated frozen-dataclass configs (traced fields are pytree leaves)
    trajectory  one `lax.scan` recording every k steps, advanced in chunks
    sweep       grid -> static groups -> vmapped, sharded programs (`Spec`, the declared contract of a sim)
    runner      one batch of members: start, scan chunks, finish
    compile     ahead-of-time compilation and its timings
    devices     mesh, hosts, persistent compilation cache
    checkpoint  atomic batch and carry checkpoints, resumable
    export      results as a labelled xarray.Dataset; netCDF, JSON and figures written atomically
    files       atomic file writes
    stats       estimates from independent replicates, power, seeds needed
    report      simulation beside theory: rows, verdicts, tables (text, CSV, LaTeX)
    langevin, optimizers, manifold   dynamics building blocks as optax transformations

Import `dynamics.xla_flags` before JAX creates its CPU backend (`sims` does it for you).
"""
