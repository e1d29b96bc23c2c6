#include "head_instances.hpp"

LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::LightRnnFp64, Fp64, LightRnnHead<>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::LightRnnMtp2Fp64, Fp64, LightRnnHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::LightRnnMtp3Fp64, Fp64, LightRnnHead<lightgpt::MTP<3>>)
