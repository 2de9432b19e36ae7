// GET /metrics: the engine's counters and histograms and the store's job counts in the
// Prometheus text format (checked with promtool in the black-box tests).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "engine/engine.h"
#include "store/store.h"

namespace sluice::api {

// `engines`: one per spool (their samples carry the spool's path); `hub`: the daemon's events.
// `more`, when given, adds families of its own (a cluster's broker and workers).
std::string RenderMetrics(const std::vector<const Engine*>& engines, const EventHub& hub,
                          Store* store, const std::function<void(Exposition*)>& more = nullptr);

}  // namespace sluice::api
