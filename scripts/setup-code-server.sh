#!/usr/bin/env bash
# Installs what the end-to-end tests (test/e2e/) need to drive a real VS Code:
#   - Debian packages: chromium (the browser playwright-core drives), ripgrep (VS Code's
#     search binary; its npm package would download one at install time, which is not
#     possible offline), and the headers that code-server's native modules build against.
#   - code-server (VS Code's server build, whose extension host is plain Node) into a cache
#     folder outside the repo's node_modules:
#       ${PLASTICITY_LENS_E2E_CACHE:-<repo>/.e2e-cache}/code-server-<version>/
#
# Idempotent: a finished install leaves a stamp file; a rerun only checks and exits.
# Works with only the npm registry and Debian's apt reachable: every install script that
# would download a prebuilt binary is skipped (--ignore-scripts) and the native modules are
# then rebuilt from source against the local Node headers.
#
# Environment:
#   PLASTICITY_LENS_E2E_CACHE  cache folder (default: <repo>/.e2e-cache)
#   CODE_SERVER_VERSION        code-server version (default: 4.100.3, the one that runs on Node 20)
#   E2E_SKIP_APT=1             do not touch apt; only check that the packages are there
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly CACHE_DIR="${PLASTICITY_LENS_E2E_CACHE:-$REPO_ROOT/.e2e-cache}"
readonly CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.100.3}"
readonly INSTALL_DIR="$CACHE_DIR/code-server-$CODE_SERVER_VERSION"
readonly STAMP="$INSTALL_DIR/.setup-complete"

# chromium: the browser; ripgrep: VS Code's search; the -dev packages and pkg-config: headers
# for kerberos, native-keymap/x11 and keytar-like modules; build-essential and python3:
# node-gyp's toolchain; fonts so screenshots show text.
readonly APT_PACKAGES=(
  chromium
  ripgrep
  build-essential
  python3
  pkg-config
  libkrb5-dev
  libx11-dev
  libxkbfile-dev
  libsecret-1-dev
  fonts-dejavu-core
)

log() { printf '[setup-code-server] %s\n' "$*"; }
die() {
  printf '[setup-code-server] ERROR: %s\n' "$*" >&2
  exit 1
}
step_start() {
  STEP_NAME="$1"
  STEP_T0=$SECONDS
  log "$STEP_NAME ..."
}
step_end() { log "$STEP_NAME done in $((SECONDS - STEP_T0)) s"; }

trap 'rc=$?; if [ $rc -ne 0 ]; then printf "[setup-code-server] FAILED (exit %s); last command: %s\n" "$rc" "$BASH_COMMAND" >&2; fi' EXIT

T_START=$SECONDS

# --- Node ---------------------------------------------------------------------------------
command -v node >/dev/null || die "node is not on PATH; install Node 20 first."
command -v npm >/dev/null || die "npm is not on PATH; install Node 20 (with npm) first."
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
case "$CODE_SERVER_VERSION" in
  4.100.*)
    [ "$NODE_MAJOR" = 20 ] || die "code-server $CODE_SERVER_VERSION needs Node 20, but node is $(node --version). Use Node 20 or set CODE_SERVER_VERSION to a release built for Node $NODE_MAJOR."
    ;;
esac

# node-gyp downloads Node's headers unless told where they are; this machine has no internet
# besides the package registries, so point it at the headers that came with node.
NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ -f "$NODE_PREFIX/include/node/node.h" ]; then
  export npm_config_nodedir="$NODE_PREFIX"
else
  log "warning: no Node headers under $NODE_PREFIX/include/node; node-gyp will try to download them"
fi

# --- Debian packages ----------------------------------------------------------------------
missing_apt_packages() {
  local pkg status
  for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
    case "$status" in
      ii*) ;;
      *) printf '%s\n' "$pkg" ;;
    esac
  done
}

command -v dpkg-query >/dev/null || die "dpkg-query not found: this script supports Debian/Ubuntu only."
mapfile -t MISSING < <(missing_apt_packages)
if [ "${#MISSING[@]}" -gt 0 ]; then
  if [ "${E2E_SKIP_APT:-}" = 1 ]; then
    die "missing Debian packages: ${MISSING[*]} (E2E_SKIP_APT=1 forbids installing them)."
  fi
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "missing Debian packages: ${MISSING[*]}; run as root or install them: apt-get install -y --no-install-recommends ${MISSING[*]}"
    SUDO=(sudo)
  fi
  step_start "apt-get install ${MISSING[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A stale or empty package list makes apt answer "Unable to locate package": refresh first.
  "${SUDO[@]}" apt-get update -q || die "apt-get update failed; check that Debian's mirrors are reachable."
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${MISSING[@]}" ||
    die "apt-get install failed for: ${MISSING[*]}"
  step_end
  mapfile -t STILL_MISSING < <(missing_apt_packages)
  [ "${#STILL_MISSING[@]}" -eq 0 ] || die "still missing after apt-get install: ${STILL_MISSING[*]}"
else
  log "Debian packages present: ${APT_PACKAGES[*]}"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing although the chromium package is installed."
RG_PATH="$(command -v rg)" || die "rg (ripgrep) is not on PATH although the ripgrep package is installed."

# --- code-server --------------------------------------------------------------------------
CODE_SERVER_ENTRY="$INSTALL_DIR/node_modules/code-server/out/node/entry.js"

# code-server writes a default config (with a password) under $XDG_CONFIG_HOME on every run,
# even for --version; keep that out of the user's home.
code_server_version() {
  local xdg
  xdg="$(mktemp -d)"
  XDG_CONFIG_HOME="$xdg" XDG_DATA_HOME="$xdg" node "$1" --version | tail -n1
  local rc=$?
  rm -rf "$xdg"
  return $rc
}

if [ -f "$STAMP" ] && [ -f "$CODE_SERVER_ENTRY" ]; then
  if INSTALLED_VERSION="$(code_server_version "$CODE_SERVER_ENTRY" 2>/dev/null)"; then
    log "code-server already installed: $INSTALLED_VERSION in $INSTALL_DIR"
    log "ready in $((SECONDS - T_START)) s"
    exit 0
  fi
  log "code-server in $INSTALL_DIR does not start; reinstalling"
fi

# Build in a scratch folder and move it into place only when everything worked, so an
# interrupted run never leaves a half-installed code-server that looks finished.
PARTIAL_DIR="$INSTALL_DIR.partial"
rm -rf "$PARTIAL_DIR" "$INSTALL_DIR"
mkdir -p "$PARTIAL_DIR"
printf '{ "name": "plasticity-lens-e2e-code-server", "private": true }\n' >"$PARTIAL_DIR/package.json"

# Run as `npm run e2e:setup`, this script inherits the project's .npmrc as environment
# (npm_config_ignore_scripts=true), which would make the `npm rebuild`s below build nothing.
# The installs here choose for themselves: scripts off where a download would run
# (--ignore-scripts), on where native modules are built from source.
export npm_config_ignore_scripts=false
export npm_config_yes=true
export npm_config_audit=false
export npm_config_fund=false
export npm_config_update_notifier=false

step_start "npm install code-server@$CODE_SERVER_VERSION (scripts off) into $PARTIAL_DIR"
(cd "$PARTIAL_DIR" && npm install --ignore-scripts --omit=dev --no-package-lock "code-server@$CODE_SERVER_VERSION") ||
  die "npm install code-server@$CODE_SERVER_VERSION failed; is the npm registry reachable?"
step_end

CS_DIR="$PARTIAL_DIR/node_modules/code-server"
VSCODE_DIR="$CS_DIR/lib/vscode"
[ -d "$VSCODE_DIR" ] || die "unexpected code-server layout: $VSCODE_DIR is missing."

# code-server's own native dependency (password hashing; loaded even with --auth none).
step_start "npm rebuild argon2 (code-server's top-level native module)"
# Its installer looks for a prebuilt binary on GitHub first; build from source straight away.
(cd "$PARTIAL_DIR" && npm_config_build_from_source=true npm rebuild argon2) || die "building argon2 failed; are build-essential and python3 installed?"
step_end

# What code-server's postinstall.sh does, minus the downloads: VS Code's own dependencies...
step_start "npm install VS Code's dependencies (scripts off) in lib/vscode"
(cd "$VSCODE_DIR" && npm install --ignore-scripts --omit=dev) || die "npm install in $VSCODE_DIR failed."
step_end

# ...whose @vscode/ripgrep would download rg from GitHub: give it Debian's instead.
log "using Debian's ripgrep ($RG_PATH) as @vscode/ripgrep's binary"
mkdir -p "$VSCODE_DIR/node_modules/@vscode/ripgrep/bin"
cp "$RG_PATH" "$VSCODE_DIR/node_modules/@vscode/ripgrep/bin/rg"

step_start "npm rebuild in lib/vscode (node-pty, spdlog, kerberos, native-watchdog, ...)"
(cd "$VSCODE_DIR" && npm rebuild) || die "npm rebuild in $VSCODE_DIR failed; see the compiler output above (missing -dev package?)."
step_end

log "linking node_modules.asar and the bin scripts (as code-server's postinstall.sh does)"
ln -sfn node_modules "$VSCODE_DIR/node_modules.asar"
ln -sfn code-linux.sh "$VSCODE_DIR/bin/remote-cli/code-server"
ln -sfn browser-linux.sh "$VSCODE_DIR/bin/helpers/browser.sh"

step_start "npm install the built-in extensions' shared dependencies"
(cd "$VSCODE_DIR/extensions" && npm install --omit=dev) || die "npm install in $VSCODE_DIR/extensions failed."
step_end

# --- check and commit ---------------------------------------------------------------------
log "checking the native modules load"
(cd "$VSCODE_DIR" && node -e '
  for (const m of ["node-pty", "@vscode/spdlog", "kerberos", "native-watchdog", "@parcel/watcher"]) {
    require(m);
  }
') || die "a native module of VS Code does not load; the build above went wrong."
(cd "$PARTIAL_DIR" && node -e 'require("argon2")' 2>/dev/null) ||
  (cd "$CS_DIR" && node -e 'require("argon2")') || die "argon2 does not load."

VERSION_LINE="$(code_server_version "$CS_DIR/out/node/entry.js")" || die "code-server --version failed."
log "code-server reports: $VERSION_LINE"

date -u +%Y-%m-%dT%H:%M:%SZ >"$PARTIAL_DIR/.setup-complete"
mv "$PARTIAL_DIR" "$INSTALL_DIR"
log "installed code-server $CODE_SERVER_VERSION in $INSTALL_DIR in $((SECONDS - T_START)) s"
