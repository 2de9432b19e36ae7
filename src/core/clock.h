// Clock: every read of the time goes through here so tests can move time without sleeping.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock microseconds since the Unix epoch (for timestamps stored and shown).
  virtual int64_t NowMicros() const = 0;
  // Monotonic microseconds since an arbitrary point (for durations and latencies).
  virtual int64_t MonotonicMicros() const = 0;

  // The process-wide real clock. Never deleted.
  static Clock* Real();
};

// A clock that only moves when told to. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_micros = 1'700'000'000'000'000) : now_(start_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  int64_t MonotonicMicros() const override { return now_.load(); }
  void Advance(int64_t micros) { now_.fetch_add(micros); }

 private:
  std::atomic<int64_t> now_;
};

// Parses an RFC 3339 date-time ("2026-01-02T03:04:05.5+01:00") into wall-clock microseconds.
// InvalidArgument when it is not one.
Result<int64_t> ParseTime(std::string_view text);

// Also takes the shorter dates people type (and Arthur's clients send): "2015-03-01",
// "2018-02-26 09:00", "2018-02-26 09:00:00" (UTC unless a zone is given).
Result<int64_t> ParseLooseTime(std::string_view text);

// Formats wall-clock microseconds as RFC 3339 UTC with microseconds
// ("2026-01-02T03:04:05.123456Z").
std::string FormatTime(int64_t micros);

}  // namespace sluice
