#!/usr/bin/env bash
# `make container-test`: build the image and run docker/compose.yaml's topology as
# podman containers, then the tests of tests/containers against it.
#
#   1. podman, runc and debootstrap (installed with apt-get when missing);
#   2. a base image: python:3.11-slim when it can be pulled, else Debian bookworm's
#      Python from debootstrap (root file system cached as a tar);
#   3. wheels of docker/requirements.txt and setuptools built on the host (cached
#      per requirements hash and Python version), so the build needs no network;
#   4. the image, built from docker/Dockerfile; its size is printed;
#   5. pytest tests/containers, which starts the services from compose.yaml.
# Whatever happens, the containers and volumes this run created are removed.
#
# Cache: NNPIPE_CONTAINER_CACHE (default ~/.cache/nnpipe-containers).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
CACHE=${NNPIPE_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nnpipe-containers}
IMAGE=localhost/nnpipe:0.1.0
BASE_DEBIAN=localhost/nnpipe-base:bookworm
RUN_ID=nnpipe-ct-$$-$(date +%s)
STAGE=docker/wheels
T0=$(date +%s)

step() { echo "== [$(($(date +%s) - T0)) s] $*"; }
fail() { echo "container-test: $*" >&2; exit 1; }
fail_log() { tail -25 "$LOGS/$1" >&2; fail "failed: see $LOGS/$1"; }

# -- 1. the container runtime -------------------------------------------------------
missing=()
for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    [[ $(id -u) == 0 ]] || fail "needs ${missing[*]}, which are not installed, and only root can install them (apt-get install podman runc debootstrap)"
    command -v apt-get >/dev/null || fail "needs ${missing[*]}, which are not installed, and there is no apt-get to install them with"
    # Package lists may be missing or stale on a fresh machine: update once, then retry.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap >/dev/null \
        || { apt-get update -q >/dev/null \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap >/dev/null; } \
        || fail "apt-get install podman runc debootstrap failed (see above): no container runtime"
fi
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/$RUN_ID.XXXX")
mkdir -p "$CACHE"
# crun refuses these machines' hybrid cgroups; and without an empty default_ulimits
# every container fails with "setrlimit RLIMIT_NOFILE: Operation not permitted".
cat >"$LOGS/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$LOGS/containers.conf
podman info >/dev/null || fail "podman cannot run here (podman info failed, see above)"

cleanup() {
    status=$?
    rm -rf "$STAGE"
    podman rm --force --time 5 --filter "label=nnpipe.container-test=$RUN_ID" >/dev/null 2>&1 || true
    podman volume ls --quiet --filter "label=nnpipe.container-test=$RUN_ID" \
        | xargs -r podman volume rm --force >/dev/null 2>&1 || true
    step "done (exit $status)"
}
trap cleanup EXIT

# -- 2. the base image --------------------------------------------------------------
debian_mirror() {
    # The machine's own Debian mirror (deb822 sources or sources.list).
    local uri
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -1 | awk '{print $2}')
    [[ -n $uri ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | grep -v security | head -1 | awk '{print $2}')
    echo "${uri:-http://deb.debian.org/debian}"
}
if [[ -n ${NNPIPE_BASE_IMAGE:-} ]]; then
    BASE=$NNPIPE_BASE_IMAGE
elif podman image exists docker.io/library/python:3.11-slim \
    || timeout 120 podman pull --quiet docker.io/library/python:3.11-slim >/dev/null 2>&1; then
    BASE=docker.io/library/python:3.11-slim
else
    BASE=$BASE_DEBIAN
    tarball=$CACHE/base-bookworm-python3.tar
    if ! podman image exists "$BASE"; then
        if [[ ! -s $tarball ]]; then
            mirror=$(debian_mirror)
            step "python:3.11-slim cannot be pulled: building Debian bookworm with python3 from $mirror"
            rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
            debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$mirror" \
                >"$LOGS/debootstrap.log" 2>&1 || { rm -rf "$rootfs"; fail_log debootstrap.log; }
            tar -C "$rootfs" -c . >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
            rm -rf "$rootfs"
        fi
        step "importing the base image from $tarball"
        podman import --quiet "$tarball" "$BASE" >/dev/null
    fi
fi
BASE_PY=$(podman run --rm --network host "$BASE" python3 -c 'import platform; print(platform.python_version())')
step "base image $BASE (Python $BASE_PY)"

# -- 3. wheels ----------------------------------------------------------------------
key=$(cat docker/requirements.txt | sha256sum | cut -c1-16)-py$BASE_PY
WHEELS=$CACHE/wheels-$key
if [[ ! -d $WHEELS ]]; then
    step "building wheels of docker/requirements.txt into $WHEELS"
    tmp=$(mktemp -d "$CACHE/wheels.XXXXXX")
    # setuptools builds nnpipe itself (pyproject's build-system) inside the build.
    setuptools=$(sed -n 's/^requires = \["\(setuptools[^"]*\)"\]/\1/p' pyproject.toml)
    "$PYTHON" -m pip wheel --wheel-dir "$tmp" --requirement docker/requirements.txt \
        "$setuptools" >"$LOGS/pip-wheel.log" 2>&1 || { rm -rf "$tmp"; fail_log pip-wheel.log; }
    # Pins whose marker the host's Python does not meet may be the base image's.
    for pin in $(sed -n 's/^\([^#; ]*==[^#; ]*\) *;.*/\1/p' docker/requirements.txt); do
        "$PYTHON" -m pip wheel --no-deps --wheel-dir "$tmp" "$pin" >>"$LOGS/pip-wheel.log" 2>&1 \
            || { rm -rf "$tmp"; fail_log pip-wheel.log; }
    done
    ls "$tmp"/*.whl >/dev/null 2>&1 || fail "no wheels were built from docker/requirements.txt"
    mv "$tmp" "$WHEELS"
fi
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -l "$WHEELS"/*.whl "$STAGE"/ 2>/dev/null || cp "$WHEELS"/*.whl "$STAGE"/

# -- 4. the image -------------------------------------------------------------------
step "building $IMAGE from docker/Dockerfile"
iid=$(mktemp)
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
podman build --ignorefile docker/Dockerfile.dockerignore --file docker/Dockerfile \
    --build-arg BASE_IMAGE="$BASE" --iidfile "$iid" --tag "$IMAGE" . >"$LOGS/build.log" 2>&1 \
    || fail_log build.log
IID=$(cat "$iid") && IID=${IID#sha256:} && rm -f "$iid"
# The image the tag named before is replaced: without this, every run would leave
# 1.3 GB behind (the build stage's layers stay, as the next build's cache).
if [[ -n $previous && $previous != "$IID" ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
fi
rm -rf "$STAGE"
size=$(podman image inspect --format '{{.Size}}' "$IID")
step "image $IMAGE ${IID:0:12}: $((size / 1000000)) MB (base $BASE: $(($(podman image inspect --format '{{.Size}}' "$BASE") / 1000000)) MB)"

# -- 5. the topology ----------------------------------------------------------------
step "starting compose.yaml's services as containers; running tests/containers"
NNPIPE_CONTAINER_IMAGE=$IID NNPIPE_CONTAINER_RUN=$RUN_ID \
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/containers "$@"
