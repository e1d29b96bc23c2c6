// lightgpt for CUDA translation units (nvcc). Includes everything that is safe on the device
// side — never Eigen — plus the CUDA runtime plumbing. The CUDA kernels of the backend's contract
// (Ops<Cuda>) are added here as they are written; until then a Cuda model fails to compile with a
// message saying so.
#pragma once

#include "backend/cuda/device.cuh"
#include "backend/tags.hpp"
#include "core/concepts.hpp"
#include "core/config.hpp"
#include "core/elementwise.hpp"
#include "core/error.hpp"
#include "core/precision.hpp"
#include "heads/dense.hpp"
#include "heads/mtp.hpp"
#include "mixers/attention.hpp"
#include "model/gpt.hpp"
