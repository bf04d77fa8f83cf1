#!/bin/sh
# Stand-in for claude-api-proxy in supervisor tests: records its life in $EVENTS.
# STUB_PROXY: run (default) | crash (exit 3) | config (exit 64) | orphan (leave an orphan)
echo "proxy-start $$ $*" >>"$EVENTS"
on_signal() {
  echo "proxy-$1 $$" >>"$EVENTS"
  sleep "${STUB_DRAIN_SECS:-0}"
  echo "proxy-exit $$" >>"$EVENTS"
  exit 0
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'echo "proxy-HUP $$" >>"$EVENTS"' HUP
case "${STUB_PROXY:-run}" in
  crash) exit 3 ;;
  config) echo "bad setting" >&2; exit 64 ;;
  orphan) sh -c 'sleep 0.3 & exit 0' ;;
esac
while :; do sleep 0.05; done
