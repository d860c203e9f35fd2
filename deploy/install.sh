#!/bin/sh
# Installs ICN (icnd and icnctl) from this source tree.
#
#   deploy/install.sh            a member's laptop: ~/.local/bin, a systemd
#                                user service and ~/.config/icn/icn.toml
#   sudo deploy/install.sh --system
#                                an always-on node: /usr/local/bin, an `icn`
#                                system user, /etc/icn/icn.toml, icnd.service
#
# Options: --prefix DIR (where bin/ goes), --from DIR (take built binaries
# from DIR instead of building them), --no-service (binaries and config
# only). It never overwrites a config or a passphrase file that exists, and
# never starts anything: it prints the next steps.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
mode=user
prefix=
from=
service=yes

while [ $# -gt 0 ]; do
    case "$1" in
        --system) mode=system ;;
        --prefix) prefix=$2; shift ;;
        --from) from=$2; shift ;;
        --no-service) service=no ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$mode" = system ]; then
    : "${prefix:=/usr/local}"
    config_dir=/etc/icn
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: --system needs root (sudo deploy/install.sh --system)" >&2
        exit 2
    fi
else
    : "${prefix:=$HOME/.local}"
    config_dir=${XDG_CONFIG_HOME:-$HOME/.config}/icn
fi

if [ -z "$from" ]; then
    if ! command -v cargo >/dev/null 2>&1; then
        echo "install.sh: cargo is not installed; install Rust from https://rustup.rs, or pass --from DIR with built binaries" >&2
        exit 2
    fi
    echo "Building icnd and icnctl (release; a few minutes the first time)…"
    (cd "$here" && cargo build --release --locked -p icn-cli)
    from=$here/target/release
fi
for binary in icnd icnctl; do
    if [ ! -x "$from/$binary" ]; then
        echo "install.sh: $from/$binary is missing" >&2
        exit 2
    fi
done

mkdir -p "$prefix/bin" "$config_dir"
install -m 0755 "$from/icnd" "$from/icnctl" "$prefix/bin/"
echo "Installed $prefix/bin/icnd and $prefix/bin/icnctl ($("$prefix/bin/icnctl" --version))."

if [ "$mode" = system ]; then
    template=$here/deploy/config/always-on.toml
else
    template=$here/deploy/config/laptop.toml
fi
if [ -e "$config_dir/icn.toml" ]; then
    echo "Kept the existing $config_dir/icn.toml."
else
    install -m 0644 "$template" "$config_dir/icn.toml"
    echo "Wrote $config_dir/icn.toml (from $(basename "$template"))."
fi
"$prefix/bin/icnd" --config "$config_dir/icn.toml" config check >/dev/null

[ "$service" = yes ] || { echo "Done (no service installed)."; exit 0; }

if [ "$mode" = system ]; then
    id icn >/dev/null 2>&1 || useradd --system --home /var/lib/icn --create-home icn
    sed "s|/usr/local/bin/icnd|$prefix/bin/icnd|" "$here/deploy/systemd/icnd.service" \
        > /etc/systemd/system/icnd.service
    cat <<EOF
Installed /etc/systemd/system/icnd.service. Next:
  sudo -u icn $prefix/bin/icnctl --data-dir /var/lib/icn id init
  sudo install -m 0600 -o icn /dev/stdin /etc/icn/passphrase   # type the passphrase, Ctrl-D
  sudo systemctl enable --now icnd
  sudo -u icn $prefix/bin/icnctl --data-dir /var/lib/icn doctor
EOF
else
    unit_dir=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user
    mkdir -p "$unit_dir"
    sed "s|%h/.local/bin/icnd|$prefix/bin/icnd|; s|%h/.config/icn|$config_dir|g" \
        "$here/deploy/systemd/icnd-user.service" > "$unit_dir/icnd.service"
    cat <<EOF
Installed $unit_dir/icnd.service. Next:
  icnctl id init                  # choose a passphrase
  printf '%s' 'your passphrase' > $config_dir/passphrase && chmod 600 $config_dir/passphrase
  systemctl --user enable --now icnd
  icnctl web open                 # the web app; join your co-op there
EOF
fi
