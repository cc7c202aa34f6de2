#pragma once

// convt: convolution and transposed convolution, forward and backward, header-only.

#include "cpu.hpp"
#include "error.hpp"
#include "gemm.hpp"
#include "geometry.hpp"
#include "isa.hpp"
#include "kernels.hpp"
#include "layer.hpp"
#include "matrix.hpp"
#include "padding.hpp"
#include "peak.hpp"
#include "plan.hpp"
#include "seed_layers.hpp"
#include "shifted.hpp"
#include "threading.hpp"
#include "version.hpp"
#include "workspace.hpp"
