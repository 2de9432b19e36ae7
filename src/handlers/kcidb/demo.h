// Demo KCIDB submissions for `sluice demo-data`, `make run` and the benchmarks: valid 5.3
// documents shaped like real ones (a checkout, builds, tests with log excerpts), plus on
// request a share of broken ones so failed/ shows its reasons.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "core/env.h"
#include "core/status.h"

namespace sluice::kcidb {

struct DemoOptions {
  int count = 100;
  int tests_per_file = 20;
  double bad_fraction = 0.0;  // share of files that are broken on purpose
  bool minimal = false;       // one test and nothing else per file (benchmark (b))
  uint64_t seed = 1;
};

// The text of demo submission number `index`.
std::string DemoSubmission(const DemoOptions& options, int index, std::mt19937_64& rng);

// Writes `options.count` submissions into `dir` (write to a dotfile, then rename, as a
// well-behaved producer does). Returns the number written.
Result<int> WriteDemoSpool(Env* env, const std::string& dir, const DemoOptions& options);

}  // namespace sluice::kcidb
