// Metrics: a lock-free histogram and a writer of the Prometheus text exposition format
// (version 0.0.4): families with HELP and TYPE, escaped label values, histograms with
// cumulative buckets, _sum and _count.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A histogram with fixed upper bounds. Observe() is thread-safe and lock-free.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket (not cumulative) counts, the last one for +Inf; and the sum of observations.
  std::vector<uint64_t> Counts() const;
  double Sum() const { return sum_.load(); }

  // Seconds from 100 µs to 60 s, for latencies.
  static std::vector<double> LatencyBounds();

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;
  std::atomic<double> sum_{0};
};

class Exposition {
 public:
  // Starts a metric family; `type` is counter, gauge or histogram.
  void Family(const std::string& name, const std::string& type, const std::string& help);
  void Sample(const std::string& name, const Labels& labels, double value);
  void HistogramSamples(const std::string& name, const Labels& labels, const Histogram& h);
  const std::string& text() const { return out_; }

 private:
  static std::string LabelText(const Labels& labels);
  std::string out_;
};

}  // namespace sluice
