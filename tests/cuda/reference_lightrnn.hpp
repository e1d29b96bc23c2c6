// CPU Fp32 reference for the CUDA lightrnn tests (host-compiled in reference_lightrnn.cpp).
#pragma once

namespace lightgpt::testing::reference {}
