#!/usr/bin/env bash
# The README's first command as a newcomer runs it: a plain `pip install -e .` (no dev extra), then
# `aiguillage up --demo`; the README's example posted and routed, demo figures served, a clean stop.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-plain
data=$(mktemp -d /tmp/aiguillage-smoke.XXXXXX)
port=18080
rm -rf "$venv"
python3 -m venv "$venv" && "$venv/bin/pip" install -q -e .

"$venv/bin/aiguillage" up --demo --port "$port" --data-dir "$data/var" >"$data/up.out" 2>"$data/up.err" &
up=$!
fail() { echo "!!! smoke: $1"; tail -n 40 "$data/up.err"; tail -n 20 "$data"/var/log/*.log 2>/dev/null || true; kill -INT "$up" 2>/dev/null || true; exit 1; }
for _ in $(seq 1 120); do
  grep -q "Aiguillage is up" "$data/up.err" 2>/dev/null && break
  kill -0 "$up" 2>/dev/null || fail "aiguillage up exited before it was up"
  sleep 1
done
grep -q "Aiguillage is up" "$data/up.err" || fail "no banner after 120 s"
token=$(grep -oE "token +cpam +[^ ]+" "$data/up.err" | awk '{print $3}')
[ -n "$token" ] || fail "no CPAM token in the banner"
pilotage=$(grep -oE "staff +pilotage +[^ ]+" "$data/up.err" | awk '{print $3}')
[ -n "$pilotage" ] || fail "no pilotage staff token in the banner"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/agregats")
[ "$code" = 401 ] || fail "the figures answered $code without a staff token, not 401"

answer=$(curl -s -X POST "http://127.0.0.1:$port/v1/signalements/cpam" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' --data @connectors/exemples/cpam.json)
echo "posted the README's example: $answer"
sid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["signalement_id"])' "$answer") || fail "no signalement_id"

for _ in $(seq 1 60); do
  row=$(python3 - "$data/var/aiguillage.db" "$sid" <<'PY' 2>/dev/null || true
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
r = con.execute("select file, regle from affectations where signalement_id = ?", (sys.argv[2],)).fetchone()
print("|".join(r) if r else "")
PY
)
  [ -n "$row" ] && break
  sleep 1
done
[ "$row" = "31-toulouse-SPS|retard-ij" ] || fail "the example was not routed to 31-toulouse-SPS by retard-ij (got '$row')"
echo "routed: $row"

for _ in $(seq 1 90); do
  n=$(curl -s -H "Authorization: Bearer $pilotage" "http://127.0.0.1:$port/v1/agregats" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["agregats"]))' 2>/dev/null || echo 0)
  [ "$n" -gt 0 ] && break
  sleep 1
done
[ "$n" -gt 0 ] || fail "no demo figures on /v1/agregats"
echo "demo figures served: $n"

kill -INT "$up"
status=0; wait "$up" || status=$?
[ "$status" -eq 0 ] || fail "aiguillage up stopped with status $status"
left=$(pgrep -f -- "$data" || true)
[ -z "$left" ] || fail "processes left running: $left"
echo "smoke OK: a clean stop, nothing left running"
rm -rf "$data"
