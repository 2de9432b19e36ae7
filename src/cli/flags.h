// Checks shared by the commands' flags.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/clock.h"
#include "engine/retention.h"

namespace sluice::cli {

// A flag that is a number of seconds: within the range every duration is kept to
// (core/clock.h: up to 100 years), so no later sum with a time can overflow. With
// `allow_zero` false it must be above 0.
inline CLI::Validator Seconds(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](std::string& text) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(text, &used);
          if (used != text.size()) return "'" + text + "' is not a number of seconds";
        } catch (const std::exception&) {
          return "'" + text + "' is not a number of seconds";
        }
        if (!allow_zero && v <= 0) return "must be above 0 seconds";
        Status st = CheckDuration("the value", v);
        return st.ok() ? std::string() : st.message();
      },
      allow_zero ? "SECONDS>=0" : "SECONDS>0", "");
}

// Seconds (as Seconds) kept in a whole number: digits only.
inline CLI::Validator WholeSeconds(bool allow_zero) {
  CLI::Validator seconds = Seconds(allow_zero);
  return CLI::Validator(
      [seconds](std::string& text) -> std::string {
        if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
          return "'" + text + "' is not a whole number of seconds";
        }
        std::string copy = text;
        return seconds(copy);
      },
      allow_zero ? "SECONDS>=0" : "SECONDS>0", "");
}

// A flag that is a count or a size: digits only. CLI11 reads "-5" into an unsigned flag as
// 2^64 - 5 (no limit at all) and a number past 2^64 as the largest value.
inline CLI::Validator WholeNumber() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        if (digits) {
          try {
            (void)std::stoull(text);
            return std::string();
          } catch (const std::exception&) {
          }
        }
        return "'" + text + "' is not a whole number from 0 to 18446744073709551615";
      },
      "", "");
}

// What the store keeps of the past (engine/retention.h): --event-max-age, --event-max-count,
// --job-max-age, --failed-job-max-age.
inline void AddRetentionFlags(CLI::App* app, RetentionOptions* r) {
  app->add_option("--event-max-age", r->events.max_age_s,
                  "Seconds events are kept (state changes and job log lines)")
      ->check(WholeSeconds(false))
      ->capture_default_str();
  app->add_option("--event-max-count", r->events.max_count, "Newest events kept at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--job-max-age", r->jobs.max_age_s,
                  "Seconds succeeded and cancelled jobs are kept after they end (0: for ever)")
      ->check(WholeSeconds(true))
      ->capture_default_str();
  app->add_option("--failed-job-max-age", r->jobs.failed_max_age_s,
                  "Seconds failed jobs are kept after they end (0: for ever)")
      ->check(WholeSeconds(true))
      ->capture_default_str();
}

}  // namespace sluice::cli
