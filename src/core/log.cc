// spdlog set-up: one logger, two sinks with independent levels.
#include "core/log.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

#include "core/log_repeats.h"

namespace sluice {
namespace {

std::mutex g_mu;
LogOptions g_options;

Result<spdlog::level::level_enum> ParseLevel(const std::string& name) {
  std::string n = name == "warn" ? "warning" : name;
  for (int i = 0; i < spdlog::level::n_levels; ++i) {
    auto lvl = static_cast<spdlog::level::level_enum>(i);
    auto sv = spdlog::level::to_string_view(lvl);
    if (std::string(sv.data(), sv.size()) == n || (n == "warning" && lvl == spdlog::level::warn)) {
      return lvl;
    }
  }
  return Status::InvalidArgument("unknown log level '" + name +
                                 "' (trace, debug, info, warning, error, critical, off)");
}

Status Build(const LogOptions& options) {
  auto stderr_level = ParseLevel(options.stderr_level);
  if (!stderr_level.ok()) return stderr_level.status();
  auto file_level = ParseLevel(options.file_level);
  if (!file_level.ok()) return file_level.status();

  // Each sink behind a repeat filter: a line that comes again and again is written once,
  // then counted, whoever logs it.
  constexpr std::chrono::seconds kRepeatWindow(10);
  std::vector<spdlog::sink_ptr> sinks;
  spdlog::sink_ptr file_sink;
  auto err = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  err->set_level(*stderr_level);
  sinks.push_back(std::make_shared<RepeatFilterSink>(err, kRepeatWindow));
  spdlog::level::level_enum lowest = *stderr_level;
  if (!options.file.empty()) {
    try {
      auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.file, options.file_max_bytes, options.file_backups);
      file->set_level(*file_level);
      auto filtered = std::make_shared<RepeatFilterSink>(file, kRepeatWindow);
      file_sink = filtered;
      sinks.push_back(filtered);
      lowest = std::min(lowest, *file_level);
    } catch (const spdlog::spdlog_ex& e) {
      return Status::IOError(std::string("cannot open log file: ") + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("sluice", sinks.begin(), sinks.end());
  logger->set_level(lowest);
  for (auto& s : sinks) s->set_level(spdlog::level::trace);  // the inner sinks filter
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (file_sink && !options.file_pattern.empty()) file_sink->set_pattern(options.file_pattern);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  // Lower levels reach the log file within a second (someone may be tailing it).
  spdlog::flush_every(std::chrono::seconds(1));
  return Status::Ok();
}

}  // namespace

Status ConfigureLogging(const LogOptions& options) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_options = options;
  return Build(options);
}

Status ReopenLogFile() {
  std::lock_guard<std::mutex> lock(g_mu);
  spdlog::default_logger()->flush();
  return Build(g_options);
}

}  // namespace sluice
