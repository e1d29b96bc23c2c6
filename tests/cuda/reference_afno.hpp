// CPU Fp32 reference for the CUDA afno tests (host-compiled in reference_afno.cpp).
#pragma once

namespace lightgpt::testing::reference {}
