// LightRnnHead's kernel contract: the kernel family its impl calls through `using K =
// LightRnnKernels<Backend>;`. The primary template is declared and never defined, like
// Ops<Backend>: each backend's kernel file in this folder specialises it (cpu.hpp for Cpu, cuda.cuh
// for Cuda), so a backend whose kernel file was not included fails to compile where the part is
// used. Generic kernels stay in Ops<Backend>. Two aggregates carry what the kernels read together:
// the codebook's arrays and a batch of token windows.
#pragma once

#include <cstdint>

#include "../../core/backend_tags.hpp"

namespace lightgpt {

template <class Backend>
struct LightRnnKernels;

// The codebook as the kernels read it: LightRnnCodebook's arrays in the backend's memory. A kernel
// that never reads an array may leave it null.
struct LightRnnCodebookView {
  const std::int32_t* token_cell;  // V entries: the cell r·R + c of each token
  const std::int32_t* cell_token;  // R² entries: the token of each cell, -1 when empty
  const std::int32_t* row_count;   // R entries: the number of tokens in each row
  int R;                           // rows of the table, and cells per row
  int V;                           // tokens: the width of a full-vocabulary output row
};

// B windows of seq_len positions whose ids lie row_stride apart: position n = b·seq_len + t reads
// tokens[index(n)].
template <class Tok>
struct LightRnnWindows {
  const Tok* tokens;  // the first id read, already offset to the inputs or a depth's targets
  int row_stride;     // ids from the start of one window to the start of the next
  int B;              // windows
  int seq_len;        // positions per window

  int positions() const { return B * seq_len; }
  int index(int n) const { return (n / seq_len) * row_stride + n % seq_len; }
};

}  // namespace lightgpt
