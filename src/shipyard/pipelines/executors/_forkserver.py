"""Processes from the fork server that do not run the parent's ``__main__`` again (POSIX only).

``multiprocessing`` re-runs the parent's main script in every child it starts, so that
objects defined there unpickle. For ``shipyard pipeline run`` that script imports the
whole CLI, about 60 ms a step. The local executor sends a step here only when its task
refers to nothing in ``__main__``; ``Popen._launch`` is the standard library's (the same
in Python 3.11 to 3.13) with the two keys that name the main script left out.
"""

from __future__ import annotations

import io
import os
import sys
from multiprocessing import context, forkserver, popen_forkserver, reduction, spawn, util
from typing import Any

SUPPORTED = sys.version_info < (3, 14)  # 3.14 changed how the fork server is reached: use the ordinary path there


class MainFreePopen(popen_forkserver.Popen):
    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        parent_w = os.dup(w)  # the parent's sentinel for the child, as the standard library keeps it
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))  # type: ignore[attr-defined]
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class MainFreeProcess(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return MainFreePopen(process_obj)
