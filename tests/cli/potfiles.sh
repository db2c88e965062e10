#!/usr/bin/env bash
# potfiles.sh: every source file with translatable strings is listed in po/POTFILES.in, so no
# visible text silently escapes translation. Usage: potfiles.sh SOURCE_DIR
set -euo pipefail
cd "$1"
listed=$(grep -v '^#' po/POTFILES.in | sed '/^$/d' | sort)
found=$(grep -rlE '(^|[^A-Za-z0-9_])(_|N_|C_|ngettext)\(|translatable="yes"' app hw --include='*.c' --include='*.ui' | sort)
missing=$(comm -13 <(echo "$listed") <(echo "$found"))
stale=$(comm -23 <(echo "$listed") <(echo "$found"))
status=0
if [ -n "$missing" ]; then echo "not in po/POTFILES.in:"; echo "$missing" | sed 's/^/  /'; status=1; fi
if [ -n "$stale" ]; then echo "in po/POTFILES.in without translatable strings:"; echo "$stale" | sed 's/^/  /'; status=1; fi
[ $status = 0 ] && echo "potfiles: $(echo "$listed" | wc -l) files, all listed"
exit $status
