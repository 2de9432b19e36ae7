// RepeatFilterSink: counts repeats of a line within a window and says so once.
#include "core/log_repeats.h"

#include <spdlog/fmt/fmt.h>

#include "core/text.h"

namespace sluice {

RepeatFilterSink::RepeatFilterSink(std::shared_ptr<spdlog::sinks::sink> target,
                                   std::chrono::milliseconds window)
    : target_(std::move(target)), window_(window) {}

void RepeatFilterSink::WriteRepeats(const Seen& s, spdlog::log_clock::time_point now) {
  if (s.repeats == 0) return;
  auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(now - s.first).count() / 1e3;
  std::string text =
      fmt::format("(the line before repeated {} times in {:.0f} s: {})", s.repeats, secs, s.text);
  spdlog::details::log_msg out(now, spdlog::source_loc{}, "sluice", s.level, text);
  if (target_->should_log(out.level)) target_->log(out);
}

void RepeatFilterSink::ExpireLocked(spdlog::log_clock::time_point now) {
  // Oldest first: stop at the first line whose window is still open.
  while (!lru_.empty()) {
    auto it = seen_.find(lru_.front());
    if (now - it->second.first < window_ && seen_.size() <= kMaxLines) break;
    WriteRepeats(it->second, now);
    seen_.erase(it);
    lru_.pop_front();
  }
}

void RepeatFilterSink::sink_it_(const spdlog::details::log_msg& given) {
  // One event, one line: what a log line quotes (a file name with a newline in it, a
  // command's escape sequences) cannot forge another line or drive the terminal.
  std::string printable =
      PrintableLine(std::string_view(given.payload.data(), given.payload.size()));
  spdlog::details::log_msg msg = given;
  msg.payload = spdlog::string_view_t(printable.data(), printable.size());
  ExpireLocked(msg.time);
  std::string key(1, static_cast<char>('0' + msg.level));
  key.append(msg.payload.data(), msg.payload.size());
  auto it = seen_.find(key);
  if (it != seen_.end()) {
    it->second.repeats++;  // within its window: counted, not written
    return;
  }
  lru_.push_back(key);
  Seen s{msg.time, msg.level, std::string(msg.payload.data(), msg.payload.size()), 0,
         std::prev(lru_.end())};
  seen_.emplace(std::move(key), std::move(s));
  if (target_->should_log(msg.level)) target_->log(msg);
}

void RepeatFilterSink::flush_() {
  ExpireLocked(spdlog::log_clock::now());
  target_->flush();
}

void RepeatFilterSink::FlushExpired(spdlog::log_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  ExpireLocked(now);
}

}  // namespace sluice
