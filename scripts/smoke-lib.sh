# Helpers the compose smokes share (sourced by compose-smoke.sh and
# compose-fresh-clone-smoke.sh). Each smoke defines its own compose function and TIMEOUT_S.

SERVICES=(redis sandbox-manager worker web flower)
# The Compose under test: COMPOSE from the shell (v2: the path scripts/install-compose-v2.sh
# prints), else bookworm's docker-compose 1.29.
read -ra COMPOSE_CMD <<<"${COMPOSE:-docker-compose}"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_healthy FN [ONESHOT...]: the five services healthy within TIMEOUT_S (any of them
# unhealthy, exited or dead ends the smoke at once), and each one-shot service's container
# exited 0. FN: the smoke's docker-compose function. `ps -a`: v2's `ps` omits exited
# containers (v1's lists them), so a one-shot or a dead service would go unseen.
wait_healthy() {
  local compose=$1 deadline=$((SECONDS + TIMEOUT_S)) states service oneshot
  shift
  while :; do
    # shellcheck disable=SC2046
    states=$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
      $("$compose" ps -a -q "${SERVICES[@]}"))
    [ "$(grep -c ' healthy$' <<<"$states")" -eq 5 ] && break
    if [ "$SECONDS" -ge "$deadline" ] || grep -q -E ' (unhealthy|exited|dead)$' <<<"$states"; then
      echo "the stack is not healthy:"; echo "$states"; exit 1
    fi
    sleep 1
  done
  for service in "$@"; do
    oneshot=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' $("$compose" ps -a -q "$service"))
    [ "$oneshot" = "exited 0" ] || { echo "$service's container: $oneshot"; exit 1; }
  done
}
