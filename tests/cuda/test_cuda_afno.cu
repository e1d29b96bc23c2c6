#include "reference_afno.hpp"
