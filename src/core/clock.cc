// The real clock and time formatting.
#include "core/clock.h"

#include <time.h>

#include <cstdint>
#include <cstdio>

#include "core/json_formats.h"

namespace sluice {
namespace {

class RealClock : public Clock {
 public:
  int64_t NowMicros() const override { return Read(CLOCK_REALTIME); }
  int64_t MonotonicMicros() const override { return Read(CLOCK_MONOTONIC); }

 private:
  static int64_t Read(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

Status CheckTime(std::string_view field, int64_t micros) {
  if (micros >= kMinTimeMicros && micros <= kMaxTimeMicros) return Status::Ok();
  return Status::InvalidArgument(std::string(field) + " must be from " +
                                 FormatTime(kMinTimeMicros) + " to " + FormatTime(kMaxTimeMicros));
}

Status CheckDuration(std::string_view field, double seconds, double min_seconds) {
  if (seconds >= min_seconds && seconds <= kMaxDurationSeconds) return Status::Ok();
  char range[96];
  std::snprintf(range, sizeof(range), " must be a number of seconds from %g to %.0f (100 years)",
                min_seconds, kMaxDurationSeconds);
  return Status::InvalidArgument(std::string(field) + range);
}

int64_t SatAdd(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

int64_t SatMul(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_mul_overflow(a, b, &r)) return r;
  return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
}

int64_t SecondsToMicros(double seconds) {
  double us = seconds * 1e6;
  if (!(us == us)) return 0;  // NaN
  if (us >= 9.2e18) return INT64_MAX;
  if (us <= -9.2e18) return INT64_MIN;
  return static_cast<int64_t>(us);
}

Result<int64_t> ParseTime(std::string_view s) {
  if (!IsRfc3339DateTime(s) || (!s.empty() && s.back() == '\n')) {
    return Status::InvalidArgument("'" + std::string(s) + "' is not an RFC 3339 date-time");
  }
  auto num = [&](size_t pos, size_t n) {
    int v = 0;
    for (size_t i = 0; i < n; ++i) v = v * 10 + (s[pos + i] - '0');
    return v;
  };
  struct tm tm = {};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  int64_t micros = static_cast<int64_t>(timegm(&tm)) * 1000000;
  size_t i = 19;
  if (s[i] == '.') {
    int64_t scale = 100000;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) {
      micros += (s[i] - '0') * scale;
    }
  }
  if (s[i] == '+' || s[i] == '-') {
    int64_t offset = (num(i + 1, 2) * 3600 + num(i + 4, 2) * 60) * int64_t{1000000};
    micros += s[i] == '+' ? -offset : offset;
  }
  return micros;
}

Result<int64_t> ParseLooseTime(std::string_view text) {
  std::string s(text);
  if (s.size() == 10) s += "T00:00:00";
  if (s.size() >= 11 && s[10] == ' ') s[10] = 'T';
  if (s.size() == 16) s += ":00";  // no seconds
  if (s.size() >= 19 && s.find_first_of("Zz+-", 19) == std::string::npos) s += "Z";
  auto t = ParseTime(s);
  if (!t.ok()) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a date (like 2015-03-01 or 2015-03-01T10:00:00Z)");
  }
  return t;
}

std::string FormatTime(int64_t micros) {
  // Floor division: a time before 1970 is still a valid date, not a negative fraction.
  int64_t secs = micros / 1000000, frac = micros % 1000000;
  if (frac < 0) {
    secs -= 1;
    frac += 1000000;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm = {};
  if (gmtime_r(&t, &tm) == nullptr)
    return micros < 0 ? "0000-01-01T00:00:00.000000Z" : "9999-12-31T23:59:59.999999Z";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(frac));
  return buf;
}

}  // namespace sluice
