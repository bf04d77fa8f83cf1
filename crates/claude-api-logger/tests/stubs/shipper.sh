#!/bin/sh
# Stand-in for otlp-shipper in supervisor tests: records its life in $EVENTS.
for a in "$@"; do
  if [ "$a" = --exit-when-drained ]; then
    echo "shipper-drain-start $$ SEQ_HOST=$SEQ_HOST SEQ_PORT=$SEQ_PORT" >>"$EVENTS"
    sleep 0.3
    echo "shipper-drain-exit $$" >>"$EVENTS"
    exit 0
  fi
done
echo "shipper-start $$ $*" >>"$EVENTS"
trap 'echo "shipper-TERM $$" >>"$EVENTS"; exit 0' TERM
while :; do sleep 0.05; done
