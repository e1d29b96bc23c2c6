#!/usr/bin/env bash
# The library's layers point down (docs/design.md, "Composition"): core includes nothing above
# itself; the backend includes only core and itself; and the shared layers (core, model, optim,
# io, train) and the generic backend name no particular head or mixer in code. EXEMPT lists the
# files whose subject is a particular composition: the presets (the original scripts' runs) and
# the readers of GPT-2's published file layouts, which are the dense head with attention by
# definition.
# Usage: check_layers.sh <include/lightgpt directory>
set -u
root=${1:?usage: check_layers.sh <include/lightgpt>}
cd "$root" || exit 2
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# Quoted includes in core stay in core; angle includes name no lightgpt header outside core.
while IFS= read -r line; do fail "core includes above itself: $line"; done < <(
  grep -rnE '#include +"([^"]*/)' core || true
  grep -rnE '#include +<lightgpt/' core | grep -v '<lightgpt/core/' || true)

# The backend includes core, its own contract and its own files only.
while IFS= read -r line; do fail "backend includes a layer above it: $line"; done < <(
  grep -rnE '#include +"\.\./(\.\./)?(heads|mixers|loss|model|train|io|data|optim)/' backend || true)

EXEMPT="train/presets.hpp train/prepare.hpp io/llmc.hpp"
parts='LightRnn|lightrnn|Afno|afno|DenseHead|AttentionImpl|\bAttention\b|attention_|[Cc]odebook'
# Code only: comments and string literals (messages that give an example) removed; includes of a
# part's header count too.
code() { grep -E '#include .*(heads|mixers)/' "$1"; sed -e 's|//.*||' -e 's|"[^"]*"||g' "$1"; }
for file in $(find core model optim io train backend -name '*.hpp' -o -name '*.cuh' | sort); do
  case " $EXEMPT " in *" $file "*) continue ;; esac
  hits=$(code "$file" | grep -cE "$parts|(heads|mixers)/")
  if [ "$hits" -gt 0 ]; then
    fail "$file names a head or mixer ($hits lines), e.g.: $(code "$file" |
      grep -E "$parts|(heads|mixers)/" | head -1)"
  fi
done
[ $failed -eq 0 ] && echo "layers: every include points down; no shared layer names a part"
exit $failed
