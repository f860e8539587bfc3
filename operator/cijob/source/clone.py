"""The clone container's script: git itself fetches and checks out, this only drives it."""

from __future__ import annotations

# Where the clone container keeps what only it may see: the Secret's files, and a private
# HOME (git's config, the copied ssh key) on a memory-backed volume no other container mounts.
CREDENTIALS_DIR = "/cijob/git-credentials"
PRIVATE_DIR = "/cijob/private"
# Written by the clone container into the shared /builds volume, sourced by the launcher:
# the checked-out commit reaches $CI_COMMIT_SHA without an API round trip.
SOURCE_ENV_FILE = "/builds/.cijob-source.env"
TERMINATION_LOG = "/dev/termination-log"

# The clone container's inputs; none holds a credential (the URL has no password: the API
# server refuses one, and the Secret's values stay in their files).
URL_ENV = "CIJOB_GIT_URL"
REF_ENV = "CIJOB_GIT_REF"
COMMIT_ENV = "CIJOB_GIT_COMMIT"
DEPTH_ENV = "CIJOB_GIT_DEPTH"
SUBMODULES_ENV = "CIJOB_GIT_SUBMODULES"
CREDENTIAL_URL_ENV = "CIJOB_GIT_CREDENTIAL_URL"
DIR_ENV = "CIJOB_PROJECT_DIR"
PRIVATE_DIR_ENV = "CIJOB_PRIVATE_DIR"
CREDENTIALS_DIR_ENV = "CIJOB_CREDENTIALS_DIR"
ENV_FILE_ENV = "CIJOB_SOURCE_ENV"

# POSIX sh. Every git step's stderr is kept; a failing step writes what it was doing and git's
# own words, with the Secret's values and any URL password masked, to the termination message
# (the operator's status.message) and to the log. Success writes `commit=<sha>` there instead.
# The checkout is left writable by any user (umask 0), since the build container may run as
# another one, and git in the build container trusts it (safe.directory, in the launcher env).
SCRIPT = r"""
set -u
umask 0000
priv=${CIJOB_PRIVATE_DIR}
creds=${CIJOB_CREDENTIALS_DIR}
tlog=${CIJOB_TERMINATION_LOG:-/dev/termination-log}
export HOME="$priv/home" GIT_CONFIG_GLOBAL="$priv/gitconfig" GIT_CONFIG_NOSYSTEM=1
export GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false
mkdir -p "$HOME"
err="$priv/err"
: > "$err"
cijob_redact() {
  awk -v d="$creds" '
    BEGIN { n = 0; split("password token username", keys, " ")
      for (i = 1; i <= 3; i++) { f = d "/" keys[i]
        if ((getline s < f) > 0 && length(s) >= 3 && keys[i] != "username") sec[++n] = s
        close(f) } }
    { line = $0
      for (k = 1; k <= n; k++) while ((p = index(line, sec[k])) > 0)
        line = substr(line, 1, p - 1) "[MASKED]" substr(line, p + length(sec[k]))
      gsub(/:\/\/[^\/@ ]*:[^\/@ ]*@/, "://[MASKED]@", line); print line }'
}
cijob_fail() {
  what=$(printf '%s\n' "$1" | cijob_redact)
  msg=$(cijob_redact < "$err" | grep -v '^ *$' | tail -n 20)
  printf 'cijob: %s\n%s\n' "$what" "$msg" >&2
  printf '%s: %s' "$what" "$msg" | tail -c 3500 > "$tlog"
  exit 1
}
cijob_git() {
  what=$1; shift
  git "$@" 2> "$err" || cijob_fail "$what"
}
cijob_has() { awk -v r="$1" '$2 == r { found = 1 } END { exit !found }' "$priv/refs"; }
url=${CIJOB_GIT_URL}
ref=${CIJOB_GIT_REF}
commit=${CIJOB_GIT_COMMIT}
depth=${CIJOB_GIT_DEPTH}
dir=${CIJOB_PROJECT_DIR}
if [ -r "$creds/ssh-privatekey" ]; then
  cp "$creds/ssh-privatekey" "$priv/ssh-key" && chmod 0600 "$priv/ssh-key"
  GIT_SSH_COMMAND="ssh -i $priv/ssh-key -o IdentitiesOnly=yes -o BatchMode=yes"
  GIT_SSH_COMMAND="$GIT_SSH_COMMAND -o StrictHostKeyChecking=yes"
  export GIT_SSH_COMMAND="$GIT_SSH_COMMAND -o UserKnownHostsFile=$creds/known_hosts"
elif [ -r "$creds/password" ] || [ -r "$creds/token" ]; then
  # A credential helper that reads the Secret's files, for this host only (not for a
  # submodule elsewhere); git passes nothing of it on any command line.
  cat > "$priv/credential-helper" <<CIJOB_EOF
#!/bin/sh
test "\$1" = get || exit 0
u=oauth2; test -r $creds/username && u=\$(cat $creds/username)
p=; test -r $creds/token && p=\$(cat $creds/token)
test -r $creds/password && p=\$(cat $creds/password)
printf 'username=%s\\npassword=%s\\n' "\$u" "\$p"
CIJOB_EOF
  chmod 0700 "$priv/credential-helper"
  scope=credential.helper
  cu=${CIJOB_GIT_CREDENTIAL_URL}
  if [ -n "$cu" ]; then scope="credential.$cu.helper"; fi
  git config --global "$scope" "$priv/credential-helper"
fi
deptharg=
if [ "$depth" -gt 0 ]; then deptharg="--depth=$depth"; fi
format=
if [ "${#commit}" -eq 64 ]; then format=--object-format=sha256; fi
echo "cijob: fetching $url into $dir"
mkdir -p "$dir" 2> "$err" || cijob_fail "cannot make $dir"
cd "$dir" || cijob_fail "cannot enter $dir"
cijob_git "git init failed" init -q $format
cijob_git "git remote add failed" remote add origin "$url"
kind=branch
if [ -z "$ref" ]; then
  cijob_git "cannot read the remote's HEAD from $url" ls-remote --symref origin HEAD > "$priv/head"
  ref=$(sed -n 's|^ref: refs/heads/\(.*\)[[:space:]]HEAD$|\1|p' "$priv/head")
  if [ -z "$ref" ]; then
    echo "the remote has no HEAD branch" > "$err"; cijob_fail "cannot read the remote's HEAD"
  fi
else
  case "$ref" in refs/heads/*) ref=${ref#refs/heads/} ;; refs/tags/*) ref=${ref#refs/tags/} ;; esac
  cijob_git "cannot list the refs of $url" \
    ls-remote origin "refs/heads/$ref" "refs/tags/$ref" > "$priv/refs"
  if cijob_has "refs/heads/$ref"; then kind=branch
  elif cijob_has "refs/tags/$ref"; then kind=tag
  elif [ -z "$commit" ]; then
    echo "no branch or tag named $ref on the remote" > "$err"; cijob_fail "unknown ref $ref"
  fi
fi
if [ -n "$commit" ]; then
  echo "cijob: fetching commit $commit"
  cijob_git "the commit $commit is not on the remote" fetch -q $deptharg origin "$commit"
  target=$commit
elif [ "$kind" = tag ]; then
  echo "cijob: fetching tag $ref"
  cijob_git "cannot fetch tag $ref" \
    fetch -q --no-tags $deptharg origin "+refs/tags/$ref:refs/tags/$ref"
  target="refs/tags/$ref^{commit}"
else
  echo "cijob: fetching branch $ref"
  cijob_git "cannot fetch branch $ref" \
    fetch -q --no-tags $deptharg origin "+refs/heads/$ref:refs/remotes/origin/$ref"
  target="refs/remotes/origin/$ref"
fi
cijob_git "cannot check out $target" \
  -c advice.detachedHead=false checkout -q -f --detach "$target"
sha=$(git rev-parse HEAD 2> "$err") || cijob_fail "cannot read HEAD"
if [ -n "$commit" ] && [ "$sha" != "$commit" ]; then
  echo "checked out $sha" > "$err"; cijob_fail "the checkout is not commit $commit"
fi
recursive=
case "${CIJOB_GIT_SUBMODULES}" in recursive) recursive=--recursive ;; esac
if [ "${CIJOB_GIT_SUBMODULES}" != none ]; then
  echo "cijob: updating the submodules ${recursive:+(recursive)}"
  cijob_git "cannot update the submodules" submodule update -q --init $recursive $deptharg
fi
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "export CI_COMMIT_SHA=$sha"
  echo "export CI_COMMIT_SHORT_SHA=$(printf '%.8s' "$sha")"
  echo "export CI_COMMIT_REF_NAME=$(q "$ref")"
  if [ "$kind" = tag ]; then echo "export CI_COMMIT_TAG=$(q "$ref")"
  else echo "export CI_COMMIT_BRANCH=$(q "$ref")"; fi
} > "${CIJOB_SOURCE_ENV}"
printf 'commit=%s\n%s=%s\n' "$sha" "$kind" "$ref" > "$tlog"
echo "cijob: checked out $sha ($kind $ref)"
"""


def command() -> list[str]:
    """The clone container's command."""
    return ["sh", "-c", SCRIPT]
