// RepeatFilterSink: one line, then "repeated N times", for a log line that comes again and
// again (a failing accept() at the descriptor limit, a directory that went away). Wraps the
// sink that writes; every sink of the daemon's logger goes through one.
//
// A line is the same when its level and text are. Within `window` of its first showing, its
// repeats are counted, not written; when the window has passed (seen at the next line or the
// next flush, about every second) the count is written once, and the line may show again.
// Distinct lines are never held back. Thread-safe (spdlog's sink mutex).
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/spdlog.h"  // before any use of spdlog's templates

namespace sluice {

class RepeatFilterSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  RepeatFilterSink(std::shared_ptr<spdlog::sinks::sink> target, std::chrono::milliseconds window);
  // Writes the counts of lines whose window ended before `now`. Called by flush() too.
  void FlushExpired(spdlog::log_clock::time_point now);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;
  // The pattern is the written sink's.
  void set_pattern_(const std::string& pattern) override { target_->set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override {
    target_->set_formatter(std::move(f));
  }

 private:
  struct Seen {
    spdlog::log_clock::time_point first;
    spdlog::level::level_enum level;
    std::string text;
    uint64_t repeats = 0;
    std::list<std::string>::iterator age;  // position in lru_
  };
  void WriteRepeats(const Seen& s, spdlog::log_clock::time_point now);
  void ExpireLocked(spdlog::log_clock::time_point now);

  static constexpr size_t kMaxLines = 512;  // distinct lines remembered
  std::shared_ptr<spdlog::sinks::sink> target_;
  std::chrono::milliseconds window_;
  std::unordered_map<std::string, Seen> seen_;  // by level + text
  std::list<std::string> lru_;                  // keys, oldest first
};

}  // namespace sluice
