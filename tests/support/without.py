"""`python -m tests.support.without PKG[,PKG] MODULE ARGS...`: run `python -m MODULE ARGS` as on
a machine where those packages are not installed (importing them raises ImportError)."""

import runpy
import sys

if __name__ == "__main__":
    for name in sys.argv[1].split(","):
        sys.modules[name] = None  # `import name` now raises ImportError
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
