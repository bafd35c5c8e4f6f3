"""arbench as a library: the one entry for running, and what every command calls.

Each ``arbench`` command is one function here (the CLI parses flags and prints)::

    from arbench import api

    request = api.request(tasks=["unconditional"], samplers=["ancestral"], datasets=["digits"])
    outcome = api.run(request, Path("results"))
    markdown, written = api.run_report(outcome)
    verdict = api.compare(Path("leaderboards/smoke"), outcome.store.run_dir)

A run goes one way: the request's grids are planned (`arbench.run.plan`, pure), what
each cell reads is fingerprinted (`arbench.run.provenance.take`), the cells not yet
finished by today's code are executed where the executor puts them (`arbench.run`),
each record is stored as it finishes (`arbench.results.store`), and the report reads
the stored records (`arbench.report`). Bad input is an `arbench.errors.ArbenchError`
whose message says what to do; nothing here prints (pass `on_start` and `on_record`).
"""

from typing import TYPE_CHECKING

from arbench.api.certify import Certified, certify
from arbench.api.checkpoints import (
    import_released,
    is_main_process,
    run_torchrun,
    train,
    training_target,
)
from arbench.api.installed import plugin, plugin_parameters, plugins
from arbench.api.reports import (
    Read,
    Reported,
    build,
    compare,
    leaderboard,
    newest_run,
    read_records,
    report,
    run_report,
    task_views,
)
from arbench.api.running import OnRecord, RunOutcome, RunRequest, request, run
from arbench.plugin.kinds import Kind
from arbench.plugin.specs import PluginSpec
from arbench.run.flags import MAX_CELLS

if TYPE_CHECKING:
    from arbench.results.record import Record

__all__ = ["MAX_CELLS", "Certified", "Kind", "OnRecord", "PluginSpec", "Read", "Record", "Reported",
           "RunOutcome", "RunRequest", "build", "certify", "compare", "import_released",
           "is_main_process", "leaderboard", "newest_run", "plugin", "plugin_parameters",
           "plugins", "read_records", "report", "request", "run", "run_report", "run_torchrun",
           "task_views", "train", "training_target"]
