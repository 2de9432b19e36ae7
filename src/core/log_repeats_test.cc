// RepeatFilterSink: a storm of one line becomes one line and a count.
#include "core/log_repeats.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

namespace sluice {
namespace {

using namespace std::chrono_literals;

class RepeatFilterTest : public ::testing::Test {
 protected:
  RepeatFilterTest() {
    auto out = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    out->set_pattern("%l %v");
    sink_ = std::make_shared<RepeatFilterSink>(out, 10s);
  }
  void Log(const std::string& text, std::chrono::milliseconds at,
           spdlog::level::level_enum level = spdlog::level::warn) {
    spdlog::details::log_msg m(t0_ + at, spdlog::source_loc{}, "sluice", level, text);
    sink_->log(m);
  }
  std::vector<std::string> Lines() {
    std::vector<std::string> out;
    std::istringstream in(text_.str());
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  std::ostringstream text_;
  std::shared_ptr<RepeatFilterSink> sink_;
  spdlog::log_clock::time_point t0_ = spdlog::log_clock::now();
};

TEST_F(RepeatFilterTest, AStormOfOneLineIsWrittenOnceThenCounted) {
  for (int i = 0; i < 100000; ++i) Log("api: accept failed: Too many open files", 0ms);
  EXPECT_EQ(Lines().size(), 1u);
  sink_->FlushExpired(t0_ + 11s);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find("repeated 99999 times"), std::string::npos) << lines[1];
  // After the window it may show again.
  Log("api: accept failed: Too many open files", 12s);
  EXPECT_EQ(Lines().size(), 3u);
}

TEST_F(RepeatFilterTest, DistinctLinesAreNeverHeldBack) {
  Log("job 1 failed", 0ms);
  Log("job 2 failed", 1ms);
  Log("job 1 failed", 2ms, spdlog::level::info);  // another level: another line
  EXPECT_EQ(Lines().size(), 3u);
}

TEST_F(RepeatFilterTest, TheCountComesWithTheNextLineAfterTheWindow) {
  Log("x", 0ms);
  Log("x", 1s);
  Log("y", 20s);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[1].find("repeated 1 times"), std::string::npos);
  EXPECT_EQ(lines[2], "warning y");
}

TEST_F(RepeatFilterTest, ALineCannotForgeAnotherOrCarryEscapes) {
  Log("job 1 failed: evil\n2026-12-01 info all good.json", 0ms);
  Log("name \x1b[31mred\xff", 1ms);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "warning job 1 failed: evil\\x0a2026-12-01 info all good.json");
  EXPECT_EQ(lines[1], "warning name \\x1b[31mred\xEF\xBF\xBD");
}

TEST_F(RepeatFilterTest, MemoryIsBoundedByDistinctLines) {
  for (int i = 0; i < 5000; ++i) Log("line " + std::to_string(i), 0ms);
  EXPECT_EQ(Lines().size(), 5000u);  // all distinct, all written
}

}  // namespace
}  // namespace sluice
