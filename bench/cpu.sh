# Shared by the benchmark scripts (sourced): CPU time read from /proc.
# cpu PID...      -> CPU ticks (user + system) the processes have used so far
# nginx_pids      -> the nginx master of "$dir/nginx.pid" and its workers
# tick            -> ticks per second
cpu() {
  local total=0 p
  for p in "$@"; do
    read -r -a f <"/proc/$p/stat"
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}
nginx_pids() { local m; m=$(cat "$dir/nginx.pid"); echo "$m $(pgrep -P "$m" | tr '\n' ' ')"; }
tick=$(getconf CLK_TCK)
