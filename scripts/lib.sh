# Helpers the benchmark scripts share; source it after setting `bin` (the
# directory of the release binaries).

# A TCP port free on 127.0.0.1 now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One field of a node's `/v1/status`: status_field HTTP_PORT PYTHON_EXPR_ON_s
# prints the expression evaluated on the status `s`, or "?" if the node does
# not answer.
status_field() {
  "$bin/bluepods" status --json --http "127.0.0.1:$1" 2>/dev/null |
    python3 -c "import json,sys; s=json.load(sys.stdin); print($2)" 2>/dev/null || echo "?"
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
