// GET /metrics: the engine's counters and histograms and the store's job counts in the
// Prometheus text format (checked with promtool in the black-box tests).
#pragma once

#include <string>

#include "engine/engine.h"
#include "store/store.h"

namespace sluice::api {

std::string RenderMetrics(const Engine& engine, Store* store);

}  // namespace sluice::api
