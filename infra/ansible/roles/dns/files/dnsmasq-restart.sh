#!/bin/sh
# Restart the dnsmasq of an infrabot runtime root (CNAMEs are read only at start).
# Usage: dnsmasq-restart.sh ROOT [DNSMASQ]; it was started from ROOT/dns/dnsmasq.conf.
set -eu
root="$1"
dnsmasq="${2:-dnsmasq}"
pidfile="$root/dns/dnsmasq.pid"
conf="$root/dns/dnsmasq.conf"
pid="$(cat "$pidfile" 2>/dev/null || true)"
alive() {  # running, not a zombie nobody reaped
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
    [ -n "$state" ] && [ "$state" != Z ]
}
if [ -n "$pid" ] && grep -qF "$conf" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    tries=0
    while alive "$pid" && [ "$tries" -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
fi
if [ ! -f "$conf" ]; then
    echo "dnsmasq-restart: $conf is missing (start the estate with: infrabot estate up)" >&2
    exit 1
fi
exec "$dnsmasq" --conf-file="$conf"
