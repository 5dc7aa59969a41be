#!/usr/bin/env bash
# Checks that three lists of canaries are the same (docs/testing.md, "Canaries"):
#   - the list in runtime/canary.hpp (between canary-names-begin and canary-names-end),
#   - the CAFRAFT_CANARY("...") sites planted in actors/ and runtime/,
#   - the rows of tests/canary/canaries.tsv (three tab-separated columns, a filter in each),
# so that no canary goes unplanted, unlisted or untested.
#
#     check_table.sh SOURCE_DIR
set -u

src=${1:?usage: $0 SOURCE_DIR}
header=$src/runtime/canary.hpp
table=$src/tests/canary/canaries.tsv
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed -n '/canary-names-begin/,/canary-names-end/p' "$header" | grep -o '"[a-z0-9_]*"' | tr -d '"' |
  sort >"$tmp/listed"
grep -rhoE --include='*.cpp' --include='*.hpp' --exclude=canary.hpp 'CAFRAFT_CANARY\("[a-z0-9_]+"\)' \
  "$src/actors" "$src/runtime" | sed 's/.*("\(.*\)")/\1/' | sort -u >"$tmp/planted"
grep -v -e '^#' -e '^[[:space:]]*$' "$table" | cut -f1 | sort >"$tmp/tested"

for f in listed tested; do
  if [ -n "$(uniq -d "$tmp/$f")" ]; then
    echo "duplicate canaries in the $f list: $(uniq -d "$tmp/$f" | tr '\n' ' ')"
    status=1
  fi
done
compare() { # $1 $2: names; $3: what the difference means
  local only
  only=$(comm -23 <(sort -u "$tmp/$1") <(sort -u "$tmp/$2"))
  if [ -n "$only" ]; then
    echo "$3: $(echo "$only" | tr '\n' ' ')"
    status=1
  fi
}
compare listed planted "listed in runtime/canary.hpp but planted nowhere"
compare planted listed "planted but not listed in runtime/canary.hpp"
compare listed tested "listed in runtime/canary.hpp but without a row in canaries.tsv"
compare tested listed "rows of canaries.tsv that name no canary of runtime/canary.hpp"

bad_rows=$(grep -v -e '^#' -e '^[[:space:]]*$' "$table" |
  awk -F'\t' 'NF != 3 || $2 == "" || $3 == "" { print NR ": " $0 }')
if [ -n "$bad_rows" ]; then
  echo "rows of canaries.tsv without exactly three tab-separated columns (name, filter, env or -):"
  echo "$bad_rows"
  status=1
fi

[ "$status" -eq 0 ] && echo "$(wc -l <"$tmp/listed") canaries: listed, planted and in the table"
exit "$status"
