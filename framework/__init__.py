"""imaging-lab's task-free machinery (runner, config checks, results, resolvers)."""

from framework.resolvers import register_resolvers

# The configs' resolvers exist wherever the framework is imported, also in a launcher's worker process
# (joblib, submitit), which unpickles run.py's job function without running run.py's top level.
register_resolvers()
