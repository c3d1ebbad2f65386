"""A warm interpreter that forks one fresh child per request, for tests that need a new process each time.

Starting Python with jax, scipy, xarray and cvxpy costs about 4 s; the import and command-line tests start dozens of
processes. The zygote imports a given set of modules once, then answers each request by forking: the child inherits
those modules, does the request (import one module, or run one script as `__main__` with its argv) with its own
stdout and stderr, and exits with the script's status, exactly as `python script.py ...` would. Nothing the zygote
imports is re-executed by a child, so the import test's zygote holds third-party modules only (never the project's:
each child must import its module from nothing of ours). JAX's backend must not start in the zygote (a fork of its
threads is unsafe); importing JAX does not start it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Sequence

_SERVER = r'''
import importlib, json, os, runpy, sys, traceback
for name in filter(None, sys.argv[1].split(",")):
    module, _, call = name.partition(":")  # "module:function" also calls it (e.g. "sims:registry")
    if call:
        getattr(importlib.import_module(module), call)()
    else:
        importlib.import_module(module)
forbidden = [m for m in sys.modules for p in filter(None, sys.argv[2].split(",")) if m == p or m.startswith(p + ".")]
assert not forbidden, f"the zygote imported {forbidden}: its children would inherit them"
from jax._src import xla_bridge
assert not xla_bridge._backends, "the zygote started a JAX backend: forking it is unsafe"
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.chdir(request["cwd"])
            if "module" in request:
                sys.path[0] = ""  # as `python -c`
                importlib.import_module(request["module"])
            else:
                sys.argv = list(request["argv"])
                sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as `python script.py`
                runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as e:
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
'''


class Zygote:
    """zygote = Zygote(["jax", "xarray"], cwd); zygote.run(["run.py", "--help"]) -> CompletedProcess."""

    def __init__(self, preload: Sequence[str], cwd: str, forbid: Sequence[str] = ()):
        """preload: modules imported once and inherited by every child ("module:function" also calls the function);
        forbid: packages the zygote must not have imported after preloading (it refuses to start otherwise)."""
        self.cwd = cwd
        self._tmp = tempfile.TemporaryDirectory()
        self._proc = subprocess.Popen([sys.executable, "-c", _SERVER, ",".join(preload), ",".join(forbid)], cwd=cwd,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, request: dict, args) -> subprocess.CompletedProcess:
        out, err = os.path.join(self._tmp.name, "stdout"), os.path.join(self._tmp.name, "stderr")
        self._proc.stdin.write(json.dumps({**request, "cwd": self.cwd, "stdout": out, "stderr": err}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote died (exit {self._proc.wait()})")
        with open(out) as o, open(err) as e:
            return subprocess.CompletedProcess(args, json.loads(line), o.read(), e.read())

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess:
        """`python argv[0] argv[1:]` in a forked child, from `cwd`."""
        return self._ask({"argv": list(argv)}, [sys.executable, *argv])

    def import_module(self, module: str) -> subprocess.CompletedProcess:
        """`python -c "import module"` in a forked child, from `cwd`."""
        return self._ask({"module": module}, [sys.executable, "-c", f"import {module}"])

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._tmp.cleanup()
