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

// The times and durations Sluice takes from outside (requests, job files, task arguments,
// flags). Within them, every sum of a time and a duration, in microseconds or nanoseconds,
// stays far from int64's limits; outside them the input is refused with the range named.
constexpr int64_t kMinTimeMicros = 0;                      // 1970-01-01T00:00:00Z
constexpr int64_t kMaxTimeMicros = 7'258'118'400'000'000;  // 2200-01-01T00:00:00Z
constexpr double kMaxDurationSeconds = 3'155'760'000;      // 100 years

// InvalidArgument naming `field` unless kMinTimeMicros <= micros <= kMaxTimeMicros.
Status CheckTime(std::string_view field, int64_t micros);
// InvalidArgument naming `field` unless `seconds` is a number from `min_seconds` to
// kMaxDurationSeconds (NaN and infinities are refused).
Status CheckDuration(std::string_view field, double seconds, double min_seconds = 0);

// Saturating arithmetic for times: never wraps around, whatever it is given.
int64_t SatAdd(int64_t a, int64_t b);
int64_t SatMul(int64_t a, int64_t b);
// Seconds as microseconds, saturated (NaN is 0).
int64_t SecondsToMicros(double seconds);

// Formats wall-clock microseconds as RFC 3339 UTC with microseconds
// ("2026-01-02T03:04:05.123456Z").
std::string FormatTime(int64_t micros);

}  // namespace sluice
