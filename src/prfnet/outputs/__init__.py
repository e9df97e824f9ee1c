"""Output folders written as one consistent set per run: staged, moved into place, ``manifest.json`` last.

Every set of outputs (``prfnet eval``, ``rd``, ``demo``, ``ablate``) goes through :class:`OutputSet`: its folder
is checked once, before any work (:meth:`OutputSet.check`); every output is written into a hidden staging folder
``OUT/.run-<run id>/`` and, once all are written (and fsynced), moved into ``OUT``, ``OUT/manifest.json`` last::

    {"format": "prfnet-outputs", "version": 1, "run_id": "20250101T120000Z-4242-1a2b3c", "created_utc": "...",
     "command": "prfnet eval clic ...", "files": [{"path": "results.json", "size": 1234, "sha256": "..."}, ...]}

A reader trusts only the files the manifest lists, with their sizes and SHA-256 (:func:`verify_outputs`). While a
run moves its files into place the previous manifest is gone, so a folder without ``manifest.json`` holds no
trusted set. Files of the same kinds that the new set does not list (``submission_ssim.csv`` of an earlier run
with other metrics) are removed. Staging folders of runs that died (SIGKILL, power loss) and the hidden
``.<name>.<16 hex>.tmp`` files of :func:`prfnet.ioutil.atomic_write` left by them are removed by the next run
into the same folder; a staging folder is known to be alive by an advisory lock (``flock``) its run holds on it
(where there is no ``flock``: by being younger than :data:`STALE_AFTER_S`). Moves into place are serialised by a
lock on ``OUT`` itself, and SIGINT/SIGTERM are held back while they happen, so two runs into one folder leave the
set of one of them, whole.

**What the user owns is never touched.** A run replaces or removes an entry of its kinds only if prfnet wrote it:
listed, with the same size and SHA-256, in the folder's manifest (``files``, and ``earlier_files``: what earlier
runs of other kinds into the same folder left there) or in the journal ``OUT/.prfnet-owned.json`` that a
publication writes before it moves anything and removes once its manifest is in place (so that an interrupted
publication leaves nothing the next run would take for the user's). Anything else of those names (a ``scores.csv``
of the user's, an edited ``report.html``, a ``data/`` folder with a file added) is an
:class:`~prfnet.errors.OutputError` in one line when the set is checked, before any work, and again at publication;
:meth:`OutputSet.refuse_inputs` refuses an input that lies where the set writes.
"""

from .folder import STAGING_PREFIX, check_output_dir, reset_command, set_command
from .ownership import MANIFEST, verify_outputs
from .sets import OutputSet, OutputView

__all__ = [
    "MANIFEST",
    "STAGING_PREFIX",
    "OutputSet",
    "OutputView",
    "check_output_dir",
    "reset_command",
    "set_command",
    "verify_outputs",
]
