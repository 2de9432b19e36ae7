// Prometheus exposition: escaping, cumulative buckets, sums and counts.
#include "core/metrics.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Histogram h({0.1, 1});
  for (double v : {0.05, 0.1, 0.5, 7.0}) h.Observe(v);
  Exposition x;
  x.Family("t_seconds", "histogram", "Test.");
  x.HistogramSamples("t_seconds", {{"k", "v"}}, h);
  EXPECT_EQ(x.text(),
            "# HELP t_seconds Test.\n# TYPE t_seconds histogram\n"
            "t_seconds_bucket{k=\"v\",le=\"0.1\"} 2\n"
            "t_seconds_bucket{k=\"v\",le=\"1\"} 3\n"
            "t_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"
            "t_seconds_sum{k=\"v\"} 7.65\n"
            "t_seconds_count{k=\"v\"} 4\n");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Exposition x;
  x.Sample("m", {{"path", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(x.text(), "m{path=\"a\\\"b\\\\c\\nd\"} 1\n");
}

}  // namespace
}  // namespace sluice
