// What the engine benchmarks share: a handler that does nothing (the engine's own cost) and
// an observer that counts finished jobs.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "handlers/handler.h"

namespace sluice::bench {

class NoopHandler : public Handler {
 public:
  std::string_view kind() const override { return "noop"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext&, HandlerOutput* out) override {
    out->summary = "{}";
    return Status::Ok();
  }

 private:
  std::vector<TableSpec> tables_;
};

class CountFinished : public EngineObserver {
 public:
  void OnFinished(const Job&) override { finished++; }
  std::atomic<int64_t> finished{0};
};

}  // namespace sluice::bench
