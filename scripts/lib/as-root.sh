# Sourced by the scripts that need root (namespaces, users, tun devices, apt): when run by
# another user, they run themselves again through sudo, with the caller's Rust toolchain
# (PATH, CARGO_HOME, RUSTUP_HOME) and the project's own settings variables, so that
# `scripts/X.sh` works the same with or without sudo installed, and as root or not.
#
#   as_root "$0" "$@"      re-executes the script as root if needed, or fails saying why
as_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    if ! command -v sudo >/dev/null 2>&1; then
        echo "$(basename "$1"): needs root (it creates users, network namespaces and tun devices), and sudo is not installed: run it as root" >&2
        exit 1
    fi
    local keep=(PATH="$PATH" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
        RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}")
    local name
    for name in STAGES CHAOS_ROUNDS FAULT_SEED FUZZ_SECONDS BENCH_RUNS BENCH_SESSIONS BENCH_ROUNDS BENCH_WARMUP BENCH_NO_DNS \
        OPENVPN OPENVPN_SERVER CARGO_INCREMENTAL; do
        [ -n "${!name+x}" ] && keep+=("$name=${!name}")
    done
    exec sudo env "${keep[@]}" "$@"
}
