// GET /metrics: the engine's counters and histograms and the store's job counts in the
// Prometheus text format (checked with promtool in the black-box tests).
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"
#include "store/store.h"

namespace sluice::api {

// `engines`: one per spool (their samples carry the spool's path); `hub`: the daemon's events.
std::string RenderMetrics(const std::vector<const Engine*>& engines, const EventHub& hub,
                          Store* store);

}  // namespace sluice::api
