# Sourced: a private apt configuration for other Debian suites, derived at run time from this
# machine's own apt sources (so that no mirror host name is written into the repository).
# Nothing of the machine's own apt state is changed.
#
#   apt_private DIR "deb deb-src" "trixie trixie-backports"   sets APT_OPTS for apt-get/apt-cache
apt_private() {
    local dir="$1" types="$2" suites="$3" uri=""
    if [ -d /etc/apt/sources.list.d ]; then
        uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2; exit } $1 == "deb" && $2 ~ /^\[/ { print $3; exit }' /etc/apt/sources.list)
    fi
    if [ -z "$uri" ]; then
        echo "no Debian mirror found in this machine's apt sources (/etc/apt/sources.list{,.d})" >&2
        return 1
    fi
    # The security suite lives on its own host; every other suite is on the main mirror.
    uri="${uri%/debian-security}"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts"
    printf 'Types: %s\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$types" "$uri" "$suites" >"$dir/parts/private.sources"
    APT_OPTS=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$dir/parts"
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
        -o Dir::State::status=/dev/null -o APT::Architecture=amd64
        -o APT::Sandbox::User=root)
    apt-get -q "${APT_OPTS[@]}" update >/dev/null
}
