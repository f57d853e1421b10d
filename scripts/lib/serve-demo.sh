# Sourced by the scripts that check a live server: writes DAYS of demo data to a temporary
# store and starts `$bin serve` on a free loopback port. Sets `work` (the temporary
# directory), `server` (the server's pid) and `address` (http://127.0.0.1:PORT); an EXIT
# trap stops the server and removes the directory.
#   serve_demo DAYS
serve_demo() {
    work=$(mktemp -d)
    server=
    trap 'if [[ -n $server ]]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi; rm -rf "$work"' EXIT
    "$bin" --data "$work/data" demo --days "$1" >/dev/null
    "$bin" --data "$work/data" serve --listen 127.0.0.1:0 2>"$work/serve.log" &
    server=$!
    address=
    for _ in $(seq 1 100); do
        address=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1 || true)
        [[ -n $address ]] && return 0
        sleep 0.1
    done
    echo "the server did not start:" >&2
    cat "$work/serve.log" >&2
    return 1
}
