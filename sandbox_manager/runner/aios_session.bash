# One bash exec of a session sandbox: the working directory and exported variables the
# previous exec left are restored, the code runs in this very shell (so `cd` and `export`
# take effect), and they are saved again however it ends, as a terminal keeps them.
__aios_state=/tmp/.aios-bash-state
if [ -r "$__aios_state" ]; then . "$__aios_state"; fi
__aios_save() {
  local name
  {
    for name in $(compgen -e); do
      case $name in PWD|OLDPWD|SHLVL|_) continue ;; esac
      printf 'export %s=%q\n' "$name" "${!name}"
    done
    printf 'cd -- %q 2>/dev/null\n' "$PWD"
  } >"$__aios_state.new" && mv -f "$__aios_state.new" "$__aios_state"
}
trap __aios_save EXIT
__aios_code=$1
shift
. "$__aios_code"
