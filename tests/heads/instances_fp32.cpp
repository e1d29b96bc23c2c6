#include "head_instances.hpp"

LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::LightRnnFp32, Fp32, LightRnnHead<>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::LightRnnMtp2Fp32, Fp32, LightRnnHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::LightRnnMtp2Bf16, Bf16, LightRnnHead<lightgpt::MTP<2>>)
