"""The shell launcher and the job's scripts, as the build container runs them."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

SCRIPT_ENV = "CIJOB_SCRIPT"
AFTER_SCRIPT_ENV = "CIJOB_AFTER_SCRIPT"
AFTER_SCRIPT_TIMEOUT_ENV = "CIJOB_AFTER_SCRIPT_TIMEOUT"

# The launcher is started by `sh` (or by a `-c` shell the job names); it picks the shell as
# GitLab Runner does (bash where the image has one, else sh) and keeps the script's exit code
# as its own, whatever after_script does. The scripts travel in environment variables so the
# launcher is one fixed string whatever entrypoint wraps it.
#
# A stopped attempt (cancel, timeout: the kubelet sends SIGTERM, then waits the pod's grace
# period) stops the script's processes, which share the launcher's process group, and still
# runs after_script, as GitLab does since 17.0. CI_JOB_STATUS is success, failed or canceled
# inside after_script, as GitLab sets it.
#
# With spec.source, the clone container leaves the commit's variables (CI_COMMIT_SHA, ...) in a
# file of the shared /builds volume that $CIJOB_SOURCE_ENV names; the launcher sources it.
LAUNCHER = f"""\
if [ -n "${{CIJOB_SOURCE_ENV:-}}" ] && [ -r "$CIJOB_SOURCE_ENV" ]; then . "$CIJOB_SOURCE_ENV"; fi
CIJOB_SHELL=sh
for cijob_s in /usr/local/bin/bash /usr/bin/bash /bin/bash; do
  if [ -x "$cijob_s" ]; then CIJOB_SHELL=$cijob_s; break; fi
done
cijob_wait() {{
  wait "$1"
  cijob_rc=$?
  while kill -0 "$1" 2>/dev/null; do wait "$1"; cijob_rc=$?; done
}}
cijob_stopped=
trap 'cijob_stopped=1' TERM INT
"$CIJOB_SHELL" -c "${SCRIPT_ENV}" &
cijob_main=$!
wait "$cijob_main"
cijob_rc=$?
if [ -n "$cijob_stopped" ]; then
  trap : TERM INT
  echo "cijob: the job was stopped (SIGTERM): stopping the script"
  kill -TERM 0 2>/dev/null
  cijob_wait "$cijob_main"
  cijob_rc=143
  CI_JOB_STATUS=canceled
elif [ "$cijob_rc" -eq 0 ]; then
  CI_JOB_STATUS=success
else
  CI_JOB_STATUS=failed
fi
export CI_JOB_STATUS
cijob_status=$cijob_rc
trap : TERM INT
if [ -n "${AFTER_SCRIPT_ENV}" ]; then
  "$CIJOB_SHELL" -c "${AFTER_SCRIPT_ENV}" &
  cijob_after=$!
  (sleep "${AFTER_SCRIPT_TIMEOUT_ENV}" && kill -0 "$cijob_after" 2>/dev/null &&
    echo "after_script timed out after ${AFTER_SCRIPT_TIMEOUT_ENV} s" &&
    kill -TERM "$cijob_after" 2>/dev/null) &
  cijob_watchdog=$!
  cijob_wait "$cijob_after"
  [ "$cijob_rc" -eq 0 ] || echo "after_script failed with exit code $cijob_rc (ignored)"
  kill "$cijob_watchdog" 2>/dev/null
fi
exit "$cijob_status"
"""


def shell_launcher() -> list[str]:
    """The launcher as a command: `sh -c <launcher>`."""
    return ["sh", "-c", LAUNCHER]


def _echoed(lines: Sequence[str]) -> str:
    # Each command is printed as GitLab prints it (`$ command`), then run; `set -e` makes the
    # first failing command end the script with its own exit code.
    out = []
    for line in lines:
        out.append(f"printf '%s\\n' {shlex.quote('$ ' + line)}")
        out.append(line)
    return "\n".join(out)


_HEAD = 'set -e\nif [ -n "$BASH_VERSION" ]; then set -o pipefail; fi\n'


def build_script(before: Sequence[str], script: Sequence[str]) -> str:
    """before_script and script, run in one shell, stopping at the first failing line."""
    return _HEAD + _echoed([*before, *script]) + "\n"


def after_script(lines: Sequence[str]) -> str:
    """after_script, in a new shell with the same rules; empty when there is none."""
    return _HEAD + _echoed(lines) + "\n" if lines else ""
