# Checks what `results --toy` wrote in DIR: a report with every table and every variant, numbers
# in them, and three plots that draw bands over the seeds and the baselines.
file(READ ${DIR}/RESULTS.md report)
foreach(expect
    "## Variants" "## Loss by position" "## The original scripts' claims"
    "interpolated bigram [0-9]+\\.[0-9]+ nats"
    "\\| dense \\| [^|]+ \\| [0-9.]+ M \\| [0-9.]+ ± [0-9.]+ \\|"
    "\\| lightrnn-sequential \\|" "\\| lightrnn-realloc \\|" "\\| lightrnn-token-emb \\|"
    "\\| lightrnn-mtp2 \\|" "\\| lightrnn-cocont \\|" "\\| afno \\|" "\\| fast-mtp-2step \\|"
    "~40× fewer softmax parameters \\| GPT-2 small: 50304 × 768"
    "CoCoNT: ~0.05 lower validation loss" "MTP: < 3 % step-time overhead"
    "!\\[validation loss against tokens\\]\\(val_loss_tokens.svg\\)")
  if(NOT report MATCHES "${expect}")
    message(FATAL_ERROR "${DIR}/RESULTS.md lacks '${expect}'")
  endif()
endforeach()
foreach(svg val_loss_tokens val_loss_seconds val_loss_position)
  file(READ ${DIR}/${svg}.svg plot)
  if(NOT plot MATCHES "<polygon" OR NOT plot MATCHES "mean of 2")
    message(FATAL_ERROR "${DIR}/${svg}.svg draws no band over the seeds")
  endif()
  if(NOT svg STREQUAL "val_loss_position" AND NOT plot MATCHES ">bigram</text>")
    message(FATAL_ERROR "${DIR}/${svg}.svg draws no bigram baseline")
  endif()
endforeach()
message("report complete")
