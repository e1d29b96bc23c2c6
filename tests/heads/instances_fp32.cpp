#include "head_instances.hpp"

LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::LightRnnFp32, Fp32, LightRnnHead<>)
