#!/usr/bin/env bash
# A small internet in network namespaces, for the home-router tests.
#   $P-hub: 10.0.0.1, the co-op's always-on node (public, runs the relay)
#   $P-r1, $P-r2: home routers, WAN 10.0.0.11 / 10.0.0.12, masquerading
#     their LANs 192.168.1.0/24 and 192.168.2.0/24 with a consumer firewall
#   $P-h1 (192.168.1.2), $P-h2 (192.168.2.2): members' laptops at home
#   $P-h1b (192.168.1.3): a second laptop on h1's home network
# All of it lives in namespaces named "$P-*"; down.sh removes them.
set -euo pipefail
P=${1:?usage: up.sh PREFIX}
ns() { ip netns exec "$P-$1" "${@:2}"; }
for n in net hub r1 r2 h1 h2 h1b; do ip netns add "$P-$n"; ns $n ip link set lo up; done
ns net ip link add sw type bridge
ns net ip link set sw up
# link NS_A:IF_A <-> NS_B:IF_B
link() {
  ip link add "$P-x" type veth peer name "$P-y"
  ip link set "$P-x" netns "$P-$1"; ns $1 ip link set "$P-x" name "$2"; ns $1 ip link set "$2" up
  ip link set "$P-y" netns "$P-$3"; ns $3 ip link set "$P-y" name "$4"; ns $3 ip link set "$4" up
}
link hub eth0 net to-hub; ns net ip link set to-hub master sw
ns hub ip addr add 10.0.0.1/24 dev eth0
for r in 1 2; do
  link r$r wan net to-r$r; ns net ip link set to-r$r master sw
  ns r$r ip addr add 10.0.0.1$r/24 dev wan
  # The LAN is a bridge in the router, so more than one host fits.
  ns r$r ip link add lan type bridge
  ns r$r ip link set lan up
  link h$r eth0 r$r lan-h$r
  ns r$r ip link set lan-h$r master lan
  ns r$r ip addr add 192.168.$r.1/24 dev lan
  ns h$r ip addr add 192.168.$r.2/24 dev eth0
  ns h$r ip route add default via 192.168.$r.1
  ns r$r sysctl -qw net.ipv4.ip_forward=1
  ns r$r iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  # Like a home router: from the internet, only replies come in.
  ns r$r iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ns r$r iptables -A FORWARD -i wan -j DROP
  # Unsolicited packets to the router itself are dropped too; otherwise
  # conntrack keeps them and the NAT may pick another port for a punch.
  ns r$r iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ns r$r iptables -A INPUT -i wan -j DROP
done
link h1b eth0 r1 lan-h1b
ns r1 ip link set lan-h1b master lan
ns h1b ip addr add 192.168.1.3/24 dev eth0
ns h1b ip route add default via 192.168.1.1
