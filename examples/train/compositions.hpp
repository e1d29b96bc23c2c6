// The compile-time compositions built into the `train` binary, as a table: the flags that select
// each one, its GPT<...> type for display, and the function that trains it. The table itself is
// generated from compositions.cmake (one line per composition; the CPU ones instantiated together
// in one translation unit, the CUDA ones in another); adding a composition is adding a line there.
#pragma once

#include "train.hpp"

namespace lightgpt::examples {

struct Composition {
  const char* backend;
  const char* precision;
  const char* head;
  int mtp_depth;
  const char* mixer;
  int afno_num_blocks;  // 0 for attention
  const char* type;
  void (*run)(const RunOptions&);
};

}  // namespace lightgpt::examples

#include "compositions.inc"
