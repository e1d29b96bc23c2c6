#include "instances.hpp"

LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::DenseFp32, Fp32, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::DenseFp64, Fp64, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::Mtp2Fp64, Fp64, DenseHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::Mtp3Fp64, Fp64, DenseHead<lightgpt::MTP<3>>)
