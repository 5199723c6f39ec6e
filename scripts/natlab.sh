#!/usr/bin/env bash
# natlab.sh - a one-machine NAT traversal lab built from network namespaces.
#
# jinglefs copy of the team's ../shared/natlab/natlab.sh (see its README for the measured
# results and pitfalls). Changes: the state directory defaults to /tmp/natlab-$NATLAB_PREFIX,
# so that labs with different prefixes (tests/natlab uses a per-run prefix) can coexist;
# Prosody without proxy65 (--no-proxy65) and a choice of advertised TURN transports
# (--turn-transports) for the fallback tests; Prosody's network settings (read_size 256 KiB,
# no Nagle, like tests/servers/prosody.py) so that IBB and proxy65 are not throttled.
#
#   "internet"  nl-pub : bridge br0 203.0.113.0/24 (TEST-NET-3, never routed anywhere)
#                         203.0.113.1  coturn STUN/TURN :3478 udp+tcp, relay ports 49160-49999
#                                      prosody XMPP c2s :5222, proxy65 (XEP-0065) :5000
#   home1       nl-r1  : router, wan0 203.0.113.11  lan0 10.1.0.1/24   (NAT per VARIANT)
#               nl-a   : host A, eth0 10.1.0.2/24, default via 10.1.0.1
#   home2       nl-r2  : router, wan0 203.0.113.12  lan0 10.2.0.1/24   (NAT per VARIANT)
#               nl-b   : host B, eth0 10.2.0.2/24, default via 10.2.0.1
#
# No interface of the lab is ever placed in (or connected to) the root namespace:
# veth pairs are created directly inside the namespaces, so no packet can leave
# the machine and the host's own network is untouched.
#
# Usage:
#   natlab.sh up VARIANT [--no-xmpp] [--no-extdisco|--extdisco] [--no-proxy65|--proxy65]
#                        [--turn-transports udp,tcp|udp|tcp]
#                                      VARIANT: cone | symmetric | udp-blocked | strict | open
#                                      (re-running 'up' with another variant only swaps
#                                      the router rules and flushes conntrack; coturn or
#                                      prosody restart only if their config changed)
#   natlab.sh down                     kill tracked processes, delete namespaces + state
#   natlab.sh exec HOST CMD...         run CMD inside HOST (pub r1 r2 a b)
#   natlab.sh spawn HOST NAME CMD...   start CMD in HOST in the background, tracked
#                                      (log: $STATE/NAME.log), killed by 'down'/'kill'
#   natlab.sh kill NAME                stop one tracked process
#   natlab.sh status                   show namespaces, processes, router rules
#   natlab.sh env                      print lab parameters as shell assignments
#   natlab.sh deps                     apt-get install what is missing
#
# Variants (applied to both routers):
#   cone        nft masquerade: port-preserving, endpoint-independent mapping,
#               address+port-dependent filtering ("port-restricted cone")
#   symmetric   nft masquerade fully-random: new random port per 5-tuple
#               (srflx candidates useless, only TURN relay works)
#   udp-blocked cone NAT + routers drop every forwarded UDP packet (TCP still fine)
#   strict      udp-blocked + outbound TCP only to ports 5222 and 5000 (XMPP + proxy65);
#               TURN over TCP (3478) is blocked too, so only XMPP-based fallbacks remain
#   open        no NAT and no filter: the routers only route, and the "internet" routes
#               10.1.0.0/24 and 10.2.0.0/24 to them, so A and B have public addresses and
#               reach each other directly (STUN sees each host's own address)
#
# XEP-0215 (on by default; --no-extdisco or NATLAB_EXTDISCO=0 turns it off):
#   prosody answers urn:xmpp:extdisco:2 <services/> and <credentials/> on lab.test with
#   stun+turn udp/tcp at 203.0.113.1:3478 and temporary TURN REST credentials
#   (mod_turn_external); coturn accepts them (use-auth-secret + static-auth-secret).
#   coturn 4.6 then accepts only REST credentials (no static user): 'natlab.sh env' mints
#   one (NATLAB_TURN_USER/PASS, valid NATLAB_TURN_TTL s). With --no-extdisco the static
#   user natlab/natlab-secret is back.
#   --turn-transports (NATLAB_TURN_TRANSPORTS, default udp,tcp) picks what XEP-0215
#   advertises: udp,tcp = stun+turn over udp and tcp (mod_turn_external); udp = udp only;
#   tcp = stun+turn over tcp only (mod_external_services; a client that prefers TURN/udp
#   then has nothing else). coturn itself always serves udp and tcp.
#
# proxy65 (on by default; --no-proxy65 or NATLAB_PROXY65=0 turns it off): Prosody then has
#   no XEP-0065 proxy component, so SOCKS5 has only direct candidates (IBB fallback tests).
#   Like --no-extdisco, each 'up' applies the flags/env given to it; Prosody restarts only
#   if its generated config changed.
#
# Environment: NATLAB_PREFIX (nl), NATLAB_STATE (/tmp/natlab-$NATLAB_PREFIX),
#   NATLAB_EXTDISCO (1), NATLAB_TURN_SECRET (natlab-turn-rest-secret),
#   NATLAB_TURN_TTL (86400: lifetime of the temporary TURN credentials, seconds),
#   NATLAB_ROUTER_FW=0 removes the routers' "drop unsolicited inbound" input rule
#   (demonstrates the conntrack-clash pitfall, see README),
#   NATLAB_TURN_VERBOSE=1 adds 'verbose' to coturn (per-request log lines),
#   NATLAB_PROXY65 (1), NATLAB_TURN_TRANSPORTS (udp,tcp).
#
# Only processes this script started are ever signalled: their PID and start time
# are kept in $STATE/pids/*.pid and checked against /proc before any kill.

set -euo pipefail

P=${NATLAB_PREFIX:-nl}
STATE=${NATLAB_STATE:-/tmp/natlab-$P}
ROUTER_FW=${NATLAB_ROUTER_FW:-1}
EXTDISCO=${NATLAB_EXTDISCO:-1}
TURN_SECRET=${NATLAB_TURN_SECRET:-natlab-turn-rest-secret}
TURN_TTL=${NATLAB_TURN_TTL:-86400}
PROXY65=${NATLAB_PROXY65:-1}
TURN_TRANSPORTS=${NATLAB_TURN_TRANSPORTS:-udp,tcp}

PUB_NET=203.0.113
PUB_IP=$PUB_NET.1
R1_WAN=$PUB_NET.11
R2_WAN=$PUB_NET.12
H1_NET=10.1.0
H2_NET=10.2.0
A_IP=$H1_NET.2
B_IP=$H2_NET.2
STUN_PORT=3478
TURN_USER=natlab
TURN_PASS=natlab-secret
REALM=lab.test
XMPP_DOMAIN=lab.test
XMPP_PORT=5222
PROXY65_PORT=5000
PROXY65_JID=proxy.$XMPP_DOMAIN
XMPP_PASS=natlab
RELAY_MIN=49160
RELAY_MAX=49999

NS_PUB=$P-pub NS_R1=$P-r1 NS_R2=$P-r2 NS_A=$P-a NS_B=$P-b
ALL_NS="$NS_PUB $NS_R1 $NS_R2 $NS_A $NS_B"
VARIANTS="cone symmetric udp-blocked strict open"

log() { echo "natlab: $*" >&2; }
die() { echo "natlab: error: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, nftables)"; }

ns_exists() { [ -e "/run/netns/$1" ]; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

host_ns() {
  case "$1" in
    pub|public|internet) echo "$NS_PUB" ;;
    r1|router1) echo "$NS_R1" ;;
    r2|router2) echo "$NS_R2" ;;
    a|A|host1|hostA) echo "$NS_A" ;;
    b|B|host2|hostB) echo "$NS_B" ;;
    "$NS_PUB"|"$NS_R1"|"$NS_R2"|"$NS_A"|"$NS_B") echo "$1" ;;
    *) die "unknown host '$1' (pub r1 r2 a b)" ;;
  esac
}

# ---------------------------------------------------------------- dependencies
deps() { # deps [0|1]  (1 = XMPP server wanted too)
  need_root
  local want_xmpp=${1:-1}
  local pkgs=()
  command -v ip >/dev/null || pkgs+=(iproute2)
  command -v nft >/dev/null || pkgs+=(nftables)
  command -v conntrack >/dev/null || pkgs+=(conntrack)
  command -v turnserver >/dev/null || pkgs+=(coturn)
  [ "$want_xmpp" = 1 ] && ! command -v prosody >/dev/null && pkgs+=(prosody)
  command -v openssl >/dev/null || pkgs+=(openssl)
  command -v ss >/dev/null || pkgs+=(iproute2)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  log "installing: ${pkgs[*]}"
  # Package scripts must not start coturn/prosody as system services in the root
  # namespace. Debian containers usually ship /usr/sbin/policy-rc.d (exit 101) for
  # that; add a temporary one only if it is missing.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" ||
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"; }
  } >&2 || rc=$?
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

# ---------------------------------------------------------------- process tracking
proc_start_time() { # field 22 of /proc/PID/stat (after the parenthesised comm)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  set -- $s
  echo "${20}"
}

spawn() { # spawn NS NAME CMD...
  local ns=$1 name=$2; shift 2
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "bad process name '$name'"
  mkdir -p "$STATE/pids"
  if is_running "$name"; then log "$name already running"; return 0; fi
  # 'ip netns exec' execs the command itself, so $! is the command's own PID.
  ip netns exec "$ns" "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
  local pid=$!
  local st; st=$(proc_start_time "$pid") || st=0
  echo "$pid $st" > "$STATE/pids/$name.pid"
}

is_running() { # is_running NAME -> true if the tracked process is alive and is ours
  local f=$STATE/pids/$1.pid pid st
  [ -f "$f" ] || return 1
  read -r pid st < "$f" || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(proc_start_time "$pid" || true)" = "$st" ]
}

stop_tracked() { # stop_tracked NAME
  local f=$STATE/pids/$1.pid pid st i
  [ -f "$f" ] || return 0
  read -r pid st < "$f" || true
  if is_running "$1"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do is_running "$1" || break; sleep 0.1; done
    if is_running "$1"; then log "$1 ($pid) ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

wait_listen() { # wait_listen NS udp|tcp PORT SECONDS
  local ns=$1 proto=$2 port=$3 t=$4 i flag=-Hltn
  [ "$proto" = udp ] && flag=-Hlun
  for i in $(seq $((t * 10))); do
    [ -n "$(nsx "$ns" ss $flag "sport = :$port" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- topology
build_topology() {
  log "creating namespaces $ALL_NS"
  local ns
  for ns in $ALL_NS; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    # IPv4 only: no IPv6 link-local addresses, no DAD/RS noise, nothing for
    # ICE to gather but the lab's IPv4 addresses.
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done

  # The "internet": one bridge in nl-pub, the routers' WAN ports hang off it.
  nsx "$NS_PUB" ip link add br0 type bridge forward_delay 0 stp_state 0
  # br_netfilter is built into some kernels: keep bridged frames out of iptables/nft.
  nsx "$NS_PUB" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
  nsx "$NS_PUB" ip addr add "$PUB_IP/24" dev br0
  nsx "$NS_PUB" ip link set br0 up
  # The rest of "the internet" is a black hole: a default route into a veth pair
  # whose far end (void1) has no address and drops everything (void0 is NOARP, so
  # frames leave at once). Without it coturn's relay sendto() to unroutable peers
  # (the private host candidates every ICE agent offers) fails with ENETUNREACH and
  # coturn 4.6 tears down the whole allocation (README). No dummy module here.
  ip -n "$NS_PUB" link add void0 type veth peer name void1
  ip -n "$NS_PUB" link set void0 arp off up
  ip -n "$NS_PUB" link set void1 up
  ip -n "$NS_PUB" route add default dev void0

  local i r ns_r ns_h wan net
  for i in 1 2; do
    if [ $i = 1 ]; then ns_r=$NS_R1 ns_h=$NS_A wan=$R1_WAN net=$H1_NET
    else ns_r=$NS_R2 ns_h=$NS_B wan=$R2_WAN net=$H2_NET; fi
    # veth created directly across namespaces: never visible in the root namespace
    ip -n "$NS_PUB" link add "to-r$i" type veth peer name wan0 netns "$ns_r"
    ip -n "$NS_PUB" link set "to-r$i" master br0 up
    ip -n "$ns_r" link add lan0 type veth peer name eth0 netns "$ns_h"
    ip -n "$ns_r" addr add "$wan/24" dev wan0
    ip -n "$ns_r" addr add "$net.1/24" dev lan0
    ip -n "$ns_r" link set wan0 up
    ip -n "$ns_r" link set lan0 up
    ip -n "$ns_r" route add default via "$PUB_IP"
    nsx "$ns_r" sysctl -qw net.ipv4.ip_forward=1 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
      net.ipv4.conf.wan0.rp_filter=0 net.ipv4.conf.lan0.rp_filter=0
    ip -n "$ns_h" addr add "$net.2/24" dev eth0
    ip -n "$ns_h" link set eth0 up
    ip -n "$ns_h" route add default via "$net.1"
  done
}

# ---------------------------------------------------------------- NAT variants
router_rules() { # router_rules VARIANT -> nft script on stdout
  local v=$1 masq="masquerade" fwd_extra="" input_drop=""
  case "$v" in
    cone) ;;
    symmetric) masq="masquerade fully-random" ;;
    udp-blocked) fwd_extra='meta l4proto udp counter drop comment "udp-blocked"' ;;
    strict) fwd_extra='meta l4proto udp counter drop comment "udp-blocked"
    iifname "lan0" oifname "wan0" tcp dport != { '$XMPP_PORT', '$PROXY65_PORT' } counter drop comment "strict: only XMPP+proxy65"' ;;
    open) masq=""; fwd_extra='iifname "wan0" oifname "lan0" accept comment "open: public hosts"' ;;
    *) die "unknown variant '$v' ($VARIANTS)" ;;
  esac
  local snat=""
  [ -n "$masq" ] && snat="oifname \"wan0\" $masq"
  if [ "$ROUTER_FW" = 1 ]; then
    # Like a home router: unsolicited packets to the router itself are dropped in
    # the filter hook, so their conntrack entries are never confirmed. Without this
    # a peer's early ICE check creates an entry that steals the port the NAT wants
    # to keep, and hole punching breaks (see README "conntrack clash").
    input_drop='iifname "wan0" counter drop comment "unsolicited inbound"'
  fi
  cat <<EOF
table ip natlab
delete table ip natlab
table ip natlab {
  comment "natlab variant $v"
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    $input_drop
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    $fwd_extra
    iifname "lan0" oifname "wan0" accept
    iifname "wan0" oifname "lan0" ct state established,related accept
    counter comment "dropped unsolicited forward"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    $snat
  }
}
EOF
}

apply_variant() {
  local v=$1 r
  # "open": the internet routes the homes' networks to their routers (no NAT to hide
  # them): the servers in nl-pub and each router reach the other home's hosts.
  local routes=("$NS_PUB $H1_NET.0/24 $R1_WAN" "$NS_PUB $H2_NET.0/24 $R2_WAN"
                "$NS_R1 $H2_NET.0/24 $R2_WAN" "$NS_R2 $H1_NET.0/24 $R1_WAN") route ns net via
  for route in "${routes[@]}"; do
    read -r ns net via <<<"$route"
    if [ "$v" = open ]; then ip -n "$ns" route replace "$net" via "$via"
    else ip -n "$ns" route del "$net" 2>/dev/null || true; fi
  done
  for r in "$NS_R1" "$NS_R2"; do
    router_rules "$v" > "$STATE/$r.nft"
    nsx "$r" nft -f "$STATE/$r.nft"
    # stale mappings from a previous variant would survive otherwise
    nsx "$r" conntrack -F >/dev/null 2>&1 || true
  done
  echo "$v" > "$STATE/variant"
  log "variant '$v' applied to $NS_R1 and $NS_R2"
}

# ---------------------------------------------------------------- services
# install_conf FILE NAME: move FILE.new over FILE. Returns 0 if the service NAME must be
# (re)started: not running, or running with a different config (then it is stopped here).
install_conf() {
  local f=$1 name=$2
  if is_running "$name"; then
    if cmp -s "$f.new" "$f"; then rm -f "$f.new"; return 1; fi
    log "$name config changed, restarting $name"
    stop_tracked "$name"
  fi
  mv -f "$f.new" "$f"
  return 0
}

start_coturn() {
  mkdir -p "$STATE/coturn"
  local auth="lt-cred-mech
user=$TURN_USER:$TURN_PASS"
  if [ "$EXTDISCO" = 1 ]; then
    # TURN REST API (draft-uberti-behave-turn-rest): username "<expiry unix time>[:<user>]",
    # password base64(HMAC-SHA1(secret, username)). Prosody's mod_turn_external mints
    # these. coturn 4.6 cannot mix this with static user= accounts ("Shared secret
    # overrides username/password based auth method"), so there is no static user then:
    # 'natlab.sh env' mints a REST credential for NATLAB_TURN_USER/NATLAB_TURN_PASS.
    # use-auth-secret implies the long-term mechanism; adding lt-cred-mech only makes
    # coturn print a "CONFIGURATION ALERT".
    auth="use-auth-secret
static-auth-secret=$TURN_SECRET"
  fi
  cat > "$STATE/coturn/turnserver.conf.new" <<EOF
# generated by natlab.sh - passed with -c so /etc/turnserver.conf is never read
listening-ip=$PUB_IP
relay-ip=$PUB_IP
listening-port=$STUN_PORT
min-port=$RELAY_MIN
max-port=$RELAY_MAX
realm=$REALM
$auth
fingerprint
no-tls
no-dtls
no-cli
no-multicast-peers
userdb=$STATE/coturn/turndb
pidfile=$STATE/coturn/turnserver.pid
log-file=$STATE/coturn/turnserver.log
simple-log
no-stdout-log
$( [ "${NATLAB_TURN_VERBOSE:-0}" = 1 ] && echo verbose )
EOF
  install_conf "$STATE/coturn/turnserver.conf" coturn || return 0
  rm -f "$STATE/coturn/turnserver.log"
  spawn "$NS_PUB" coturn turnserver -c "$STATE/coturn/turnserver.conf"
  wait_listen "$NS_PUB" udp "$STUN_PORT" 10 && wait_listen "$NS_PUB" tcp "$STUN_PORT" 5 ||
    { tail -20 "$STATE/coturn/turnserver.log" "$STATE/coturn.log" >&2 2>/dev/null || true; die "coturn did not start"; }
  if [ "$EXTDISCO" = 1 ]; then log "coturn up on $PUB_IP:$STUN_PORT (udp+tcp), realm $REALM, TURN REST auth (static-auth-secret)"
  else log "coturn up on $PUB_IP:$STUN_PORT (udp+tcp), user $TURN_USER realm $REALM"; fi
}

start_prosody() {
  command -v prosody >/dev/null || { log "prosody not installed, skipping XMPP"; return 0; }
  local d=$STATE/prosody
  mkdir -p "$d/data" "$d/certs"
  if [ ! -s "$d/certs/$XMPP_DOMAIN.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$XMPP_DOMAIN" \
      -addext "subjectAltName=DNS:$XMPP_DOMAIN,DNS:$PROXY65_JID" \
      -keyout "$d/certs/$XMPP_DOMAIN.key" -out "$d/certs/$XMPP_DOMAIN.crt" >/dev/null 2>&1
  fi
  # accounts for internal_plain storage: data/<escaped host>/accounts/<user>.dat
  local acc="$d/data/${XMPP_DOMAIN//./%2e}/accounts" u
  mkdir -p "$acc"
  for u in alice bob; do
    printf 'return {\n\t["password"] = "%s";\n};\n' "$XMPP_PASS" > "$acc/$u.dat"
  done
  # alice and bob have each other in their rosters (subscription both), so each one
  # sees the other's presence and full JIDs, as real contacts would (seeded once).
  local ros="$d/data/${XMPP_DOMAIN//./%2e}/roster" peer
  mkdir -p "$ros"
  for u in alice bob; do
    if [ $u = alice ]; then peer=bob; else peer=alice; fi
    [ -e "$ros/$u.dat" ] || printf 'return {\n\t["%s@%s"] = { ["subscription"] = "both"; ["name"] = "%s"; ["groups"] = {}; };\n};\n' \
      "$peer" "$XMPP_DOMAIN" "$peer" > "$ros/$u.dat"
  done
  local mods='"roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "posix"; "version"; "time"; "uptime"' xd=""
  if [ "$EXTDISCO" = 1 ] && [ "$TURN_TRANSPORTS" = tcp ]; then
    # TCP only: mod_turn_external always adds stun/udp + turn/udp, so list the services
    # for mod_external_services directly (same TURN REST credentials).
    mods="$mods; \"external_services\""
    xd="external_service_host = \"$PUB_IP\"
external_service_port = $STUN_PORT
external_service_secret = \"$TURN_SECRET\"   -- = coturn static-auth-secret
external_service_ttl = $TURN_TTL
external_services = {      -- --turn-transports tcp: nothing over udp
  { type = \"stun\"; transport = \"tcp\" };
  { type = \"turn\"; transport = \"tcp\"; secret = true };
}"
  elif [ "$EXTDISCO" = 1 ]; then
    # XEP-0215 via mod_turn_external (it loads mod_external_services, which answers
    # urn:xmpp:extdisco:2 and :1 <services/> and <credentials/> for local c2s users).
    # host must be the IP: the lab has no DNS for clients to resolve "lab.test".
    mods="$mods; \"turn_external\""
    xd="turn_external_host = \"$PUB_IP\"
turn_external_port = $STUN_PORT
turn_external_secret = \"$TURN_SECRET\"   -- = coturn static-auth-secret
turn_external_ttl = $TURN_TTL
turn_external_tcp = $( [ "$TURN_TRANSPORTS" = udp ] && echo 'false     -- --turn-transports udp' || echo 'true      -- also advertise stun/tcp and turn/tcp')"
  fi
  cat > "$d/prosody.cfg.lua.new" <<EOF
-- generated by natlab.sh
run_as_root = true            -- lab only; the process lives in $NS_PUB
pidfile = "$d/prosody.pid"
data_path = "$d/data"
plugin_paths = { }
log = { { levels = { min = "info" }, to = "file", filename = "$d/prosody.log" } }
interfaces = { "$PUB_IP" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $XMPP_PORT }
c2s_direct_tls_ports = { }
s2s_ports = { }
$( [ "$PROXY65" = 1 ] && echo "proxy65_ports = { $PROXY65_PORT }" || echo "-- proxy65 off (--no-proxy65)" )
-- no mod_limits; bigger reads and no Nagle (as tests/servers/prosody.py), so that IBB and
-- proxy65 are not throttled. Listening ports take network_default_read_size.
network_default_read_size = 262144
network_settings = { read_size = 262144; nagle = false }
use_ipv6 = false
modules_enabled = { $mods }
modules_disabled = { "s2s"; "http"; "bosh"; "websocket" }
authentication = "internal_plain"
storage = "internal"
allow_registration = true
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
certificates = "$d/certs"
$xd

VirtualHost "$XMPP_DOMAIN"
  ssl = { certificate = "$d/certs/$XMPP_DOMAIN.crt"; key = "$d/certs/$XMPP_DOMAIN.key" }
EOF
  if [ "$PROXY65" = 1 ]; then
    cat >> "$d/prosody.cfg.lua.new" <<EOF

Component "$PROXY65_JID" "proxy65"
  proxy65_address = "$PUB_IP"
EOF
  fi
  install_conf "$d/prosody.cfg.lua" prosody || return 0
  spawn "$NS_PUB" prosody prosody -F --config "$d/prosody.cfg.lua"
  if wait_listen "$NS_PUB" tcp "$XMPP_PORT" 15 && { [ "$PROXY65" = 0 ] || wait_listen "$NS_PUB" tcp "$PROXY65_PORT" 5; }; then
    log "prosody up: c2s $PUB_IP:$XMPP_PORT domain $XMPP_DOMAIN (alice/bob, password $XMPP_PASS), $( [ "$PROXY65" = 1 ] && echo "proxy65 $PROXY65_JID at $PUB_IP:$PROXY65_PORT" || echo "no proxy65")$( [ "$EXTDISCO" = 1 ] && echo ", XEP-0215 extdisco:2 on (stun/turn over $TURN_TRANSPORTS)")"
  else
    tail -20 "$d/prosody.log" "$STATE/prosody.log" >&2 2>/dev/null || true
    die "prosody did not start"
  fi
}

# ---------------------------------------------------------------- commands
lab_complete() { local ns; for ns in $ALL_NS; do ns_exists "$ns" || return 1; done; [ -f "$STATE/built" ]; }
lab_partial() { local ns; for ns in $ALL_NS; do ns_exists "$ns" && return 0; done; [ -d "$STATE" ]; }

cmd_up() {
  need_root
  local v=${1:-} xmpp=1
  [ -n "$v" ] || die "usage: natlab.sh up VARIANT [--no-xmpp] [--no-extdisco|--extdisco] [--no-proxy65|--proxy65] [--turn-transports udp,tcp|udp|tcp]  ($VARIANTS)"
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --no-xmpp) xmpp=0 ;;
      --no-extdisco) EXTDISCO=0 ;;
      --extdisco) EXTDISCO=1 ;;
      --no-proxy65) PROXY65=0 ;;
      --proxy65) PROXY65=1 ;;
      --turn-transports) [ $# -ge 2 ] || die "--turn-transports needs a value"; TURN_TRANSPORTS=$2; shift ;;
      --turn-transports=*) TURN_TRANSPORTS=${1#*=} ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  case "$EXTDISCO" in 0|1) ;; *) die "NATLAB_EXTDISCO must be 0 or 1" ;; esac
  case "$PROXY65" in 0|1) ;; *) die "NATLAB_PROXY65 must be 0 or 1" ;; esac
  case "$TURN_TRANSPORTS" in
    udp,tcp|tcp,udp) TURN_TRANSPORTS=udp,tcp ;;
    udp|tcp) ;;
    *) die "--turn-transports / NATLAB_TURN_TRANSPORTS must be udp,tcp, udp or tcp" ;;
  esac
  router_rules "$v" >/dev/null   # validates the variant name before touching anything
  deps "$xmpp"
  if ! lab_complete; then
    lab_partial && { log "partial lab found, tearing it down first"; cmd_down; }
    mkdir -p "$STATE/pids"
    build_topology
    touch "$STATE/built"
  fi
  apply_variant "$v"
  start_coturn
  if [ $xmpp = 1 ]; then start_prosody; fi
  echo "$EXTDISCO" > "$STATE/extdisco"
  echo "$PROXY65" > "$STATE/proxy65"
  echo "$TURN_TRANSPORTS" > "$STATE/turn-transports"
  cmd_env > "$STATE/env"
  log "lab up ($v). Parameters: $STATE/env. Try: $0 exec a ss -s"
}

cmd_down() {
  need_root
  local f name ns pids
  if [ -d "$STATE/pids" ]; then
    for f in "$STATE"/pids/*.pid; do
      [ -e "$f" ] || continue
      name=$(basename "$f" .pid)
      stop_tracked "$name"
    done
  fi
  for ns in $ALL_NS; do
    ns_exists "$ns" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [ -n "$pids" ] && log "warning: processes not started by natlab still in $ns: $pids (not killed; the namespace lives on until they exit)"
    ip netns del "$ns"
  done
  # refuse to rm anything but a natlab state dir
  if [ -d "$STATE" ]; then
    case "$STATE" in /tmp/*|/var/tmp/*|/run/*) rm -rf "$STATE" ;; *) log "state dir $STATE left in place (not under /tmp)";; esac
  fi
  log "lab down"
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: natlab.sh exec HOST CMD..."
  local ns; ns=$(host_ns "$1"); shift
  ns_exists "$ns" || die "namespace $ns does not exist (run 'natlab.sh up VARIANT')"
  exec ip netns exec "$ns" "$@"
}

cmd_spawn() {
  [ $# -ge 3 ] || die "usage: natlab.sh spawn HOST NAME CMD..."
  local ns; ns=$(host_ns "$1"); shift
  ns_exists "$ns" || die "namespace $ns does not exist"
  local name=$1; shift
  spawn "$ns" "$name" "$@"
  cat "$STATE/pids/$name.pid" | cut -d' ' -f1
}

# turn_rest_cred NAME -> "USERNAME PASSWORD": a TURN REST credential valid for TURN_TTL s
turn_rest_cred() {
  local u="$(( $(date +%s) + TURN_TTL )):$1"
  echo "$u $(printf '%s' "$u" | openssl dgst -sha1 -hmac "$TURN_SECRET" -binary | openssl base64 -A)"
}

cmd_env() {
  local xd tu=$TURN_USER tp=$TURN_PASS
  xd=$(cat "$STATE/extdisco" 2>/dev/null || echo "$EXTDISCO")
  # with REST auth on, coturn accepts no static user: hand out a minted credential instead
  [ "$xd" = 1 ] && read -r tu tp < <(turn_rest_cred "$TURN_USER")
  cat <<EOF
NATLAB_PREFIX=$P
NATLAB_STATE=$STATE
NATLAB_VARIANT=$(cat "$STATE/variant" 2>/dev/null || true)
NATLAB_NS_PUB=$NS_PUB
NATLAB_NS_R1=$NS_R1
NATLAB_NS_R2=$NS_R2
NATLAB_NS_A=$NS_A
NATLAB_NS_B=$NS_B
NATLAB_PUB_IP=$PUB_IP
NATLAB_R1_WAN=$R1_WAN
NATLAB_R2_WAN=$R2_WAN
NATLAB_A_IP=$A_IP
NATLAB_B_IP=$B_IP
NATLAB_STUN=$PUB_IP:$STUN_PORT
NATLAB_TURN=$PUB_IP:$STUN_PORT
NATLAB_TURN_USER=$tu
NATLAB_TURN_PASS=$tp
NATLAB_REALM=$REALM
NATLAB_EXTDISCO=$xd
NATLAB_TURN_SECRET=$TURN_SECRET
NATLAB_TURN_TTL=$TURN_TTL
NATLAB_XMPP_DOMAIN=$XMPP_DOMAIN
NATLAB_XMPP=$PUB_IP:$XMPP_PORT
NATLAB_XMPP_USERS=alice,bob
NATLAB_XMPP_PASS=$XMPP_PASS
NATLAB_XMPP_CA=$STATE/prosody/certs/$XMPP_DOMAIN.crt
NATLAB_PROXY65_JID=$PROXY65_JID
NATLAB_PROXY65=$PUB_IP:$PROXY65_PORT
NATLAB_PROXY65_ENABLED=$(cat "$STATE/proxy65" 2>/dev/null || echo "$PROXY65")
NATLAB_TURN_TRANSPORTS=$(cat "$STATE/turn-transports" 2>/dev/null || echo "$TURN_TRANSPORTS")
NATLAB_XMPP_LOG=$STATE/prosody/prosody.log
EOF
}

cmd_status() {
  local ns name f
  echo "variant: $(cat "$STATE/variant" 2>/dev/null || echo none)"
  for ns in $ALL_NS; do
    if ns_exists "$ns"; then echo "netns $ns: $(ip -n "$ns" -br -4 addr | awk '$1!="lo"{printf "%s=%s ", $1, $3}')"
    else echo "netns $ns: absent"; fi
  done
  for f in "$STATE"/pids/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if is_running "$name"; then echo "process $name: running pid $(cut -d' ' -f1 "$f")"; else echo "process $name: dead"; fi
  done
  if ns_exists "$NS_R1"; then echo "--- $NS_R1 ruleset"; nsx "$NS_R1" nft list table ip natlab 2>/dev/null || true; fi
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    exec) cmd_exec "$@" ;;
    spawn) need_root; cmd_spawn "$@" ;;
    kill) need_root; [ $# = 1 ] || die "usage: natlab.sh kill NAME"; stop_tracked "$1" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    deps) deps ;;
    *) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || exit 2 ;;
  esac
}

main "$@"
