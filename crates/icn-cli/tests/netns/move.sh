#!/usr/bin/env bash
# Moves a laptop to another home network: unplugs HOST from its router's
# LAN and plugs it into ROUTER's (1 or 2) with address IP, as when a member
# carries their laptop from home to a friend's.
set -euo pipefail
P=${1:?usage: move.sh PREFIX HOST ROUTER IP}
HOST=${2:?}; R=${3:?}; IP=${4:?}
ns() { ip netns exec "$P-$1" "${@:2}"; }
# Deleting one end of a veth pair deletes the other (in the old router).
ns "$HOST" ip link del eth0
ip link add "$P-x" type veth peer name "$P-y"
ip link set "$P-x" netns "$P-$HOST"; ns "$HOST" ip link set "$P-x" name eth0; ns "$HOST" ip link set eth0 up
ip link set "$P-y" netns "$P-r$R"; ns "r$R" ip link set "$P-y" name "lan-$HOST"
ns "r$R" ip link set "lan-$HOST" master lan; ns "r$R" ip link set "lan-$HOST" up
ns "$HOST" ip addr add "$IP/24" dev eth0
ns "$HOST" ip route add default via "192.168.$R.1"
