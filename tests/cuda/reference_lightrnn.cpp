#include "reference_lightrnn.hpp"
