// Histogram and Prometheus text exposition.
#include "core/metrics.h"

#include <charconv>
#include <cmath>

namespace sluice {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);  // shortest exact form
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1) {}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  double old = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(old, old + value, std::memory_order_relaxed)) {
  }
}

std::vector<uint64_t> Histogram::Counts() const {
  std::vector<uint64_t> out;
  for (const auto& c : counts_) out.push_back(c.load(std::memory_order_relaxed));
  return out;
}

std::vector<double> Histogram::LatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

void Exposition::Family(const std::string& name, const std::string& type, const std::string& help) {
  out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string Exposition::LabelText(const Labels& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    s += (i ? "," : "") + labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  return s + "}";
}

void Exposition::Sample(const std::string& name, const Labels& labels, double value) {
  out_ += name + LabelText(labels) + " " + Number(value) + "\n";
}

void Exposition::HistogramSamples(const std::string& name, const Labels& labels,
                                  const Histogram& h) {
  std::vector<uint64_t> counts = h.Counts();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    Labels with_le = labels;
    with_le.emplace_back("le", i < h.bounds().size() ? Number(h.bounds()[i]) : "+Inf");
    Sample(name + "_bucket", with_le, static_cast<double>(cumulative));
  }
  Sample(name + "_sum", labels, h.Sum());
  Sample(name + "_count", labels, static_cast<double>(cumulative));
}

}  // namespace sluice
