// SSE frames and job log lines from events.
#include "api/event_streams.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/spdlog.h"

namespace sluice::api {

namespace {

std::string_view StateOf(const Event& e) {
  constexpr std::string_view kPrefix = "job.";
  std::string_view t = e.type;
  return t.substr(t.rfind(kPrefix, 0) == 0 ? kPrefix.size() : 0);
}

bool IsFinalEvent(const Event& e) {
  auto s = ParseState(StateOf(e));
  return e.type != kLogEvent && s.ok() && IsFinal(*s);
}

std::string Str(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString() ? JsonStr(it->value) : "";
}

int Int(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsInt() ? it->value.GetInt() : 0;
}

}  // namespace

std::string SseFrame(const Event& e) {
  std::string f;
  f.reserve(e.data.size() + e.type.size() + 32);
  f += "id: ";
  f += std::to_string(e.id);
  f += "\nevent: ";
  f += e.type;
  f += "\ndata: ";
  f += e.data;  // JSON text from rapidjson: no raw newlines
  f += "\n\n";
  return f;
}

std::string LogLine(const Event& e) {
  rapidjson::Document d;
  if (!ParseJson(e.data, &d).ok() || !d.IsObject()) return e.data + "\n";
  if (e.type == kLogEvent) return Str(d, "line") + "\n";
  std::string line = FormatTime(e.ts) + " " + std::string(StateOf(e));
  std::string_view state = StateOf(e);
  std::string error;
  if (auto it = d.FindMember("error"); it != d.MemberEnd() && it->value.IsObject()) {
    error = "[" + Str(it->value, "code") + "] " + Str(it->value, "message");
  }
  if (state == "running") {
    line += " (attempt " + std::to_string(Int(d, "attempts")) + " of " +
            std::to_string(Int(d, "max_attempts")) + ")";
  } else if (state == "retrying") {
    line += " at " + Str(d, "run_at") + ": " + error;
  } else if (state == "succeeded") {
    if (auto it = d.FindMember("result"); it != d.MemberEnd()) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      it->value.Accept(w);
      line += ": " + std::string(buf.GetString(), buf.GetSize());
    }
  } else if (!error.empty()) {
    line += ": " + error;
  }
  return line + "\n";
}

std::string EndOfLog(int64_t job_id, std::string_view state) {
  return "-- end of log: job " + std::to_string(job_id) + " " + std::string(state) + " --\n";
}

SseStream::SseStream(std::unique_ptr<EventFeed> feed, std::string keepalive)
    : feed_(std::move(feed)), keepalive_(std::move(keepalive)), resume_from_(feed_->last_id()) {}

void SseStream::Start(std::function<void()> wake) {
  Status st = feed_->Start(std::move(wake));
  if (!st.ok()) spdlog::warn("events: cannot start a feed: {}", st.ToString());
}

bool SseStream::Read(std::vector<Chunk>* out) {
  auto text = [out](std::string s) {
    out->push_back(std::make_shared<const std::string>(std::move(s)));
  };
  if (first_) {
    first_ = false;
    std::string head = ": sluice events\nretry: 2000\n\n";
    if (resume_from_ > 0 && feed_->oldest_kept() > resume_from_ + 1) {
      head += "event: truncated\ndata: {\"resume_from\":" + std::to_string(resume_from_) +
              ",\"oldest_kept\":" + std::to_string(feed_->oldest_kept()) +
              ",\"message\":\"events before oldest_kept are past the retention\"}\n\n";
    }
    text(std::move(head));
  }
  std::vector<std::shared_ptr<const Event>> events;
  bool lagged = false;
  Status st = feed_->Next(&events, &lagged);
  // Live events carry their frame, encoded once for every reader; replayed ones are encoded
  // here, consecutive frames in one piece.
  std::string replayed;
  for (const auto& e : events) {
    if (e->wire) {
      if (!replayed.empty()) text(std::exchange(replayed, std::string()));
      out->push_back(e->wire);
    } else {
      replayed += SseFrame(*e);
    }
  }
  if (!replayed.empty()) text(std::move(replayed));
  if (!st.ok()) {
    text("event: error\ndata: {\"message\":\"cannot read events: stream ends\"}\n\n");
    return false;
  }
  if (lagged) {
    text("event: lagged\ndata: {\"last_event_id\":" + std::to_string(feed_->last_id()) +
         ",\"message\":\"this client fell too far behind; reconnect with Last-Event-ID " +
         std::to_string(feed_->last_id()) + " to resume\"}\n\n");
    return false;
  }
  return true;
}

JobLogStream::JobLogStream(std::unique_ptr<EventFeed> feed, int64_t job_id)
    : feed_(std::move(feed)), job_id_(job_id) {}

void JobLogStream::Start(std::function<void()> wake) {
  Status st = feed_->Start(std::move(wake));
  if (!st.ok()) spdlog::warn("log: cannot start a feed: {}", st.ToString());
}

bool JobLogStream::Read(std::vector<Chunk>* out) {
  std::vector<std::shared_ptr<const Event>> events;
  bool lagged = false;
  Status st = feed_->Next(&events, &lagged);
  std::string text;
  bool more = true;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = *events[i];
    text += LogLine(e);
    // The end, unless more follows (a failed job retried later goes on).
    if (IsFinalEvent(e) && i + 1 == events.size() && !feed_->replaying()) {
      text += EndOfLog(job_id_, StateOf(e));
      more = false;
    }
  }
  if (more && (!st.ok() || lagged)) {
    text += "-- log interrupted: the reader fell behind; read it again --\n";
    more = false;
  }
  if (!text.empty()) out->push_back(std::make_shared<const std::string>(std::move(text)));
  return more;
}

}  // namespace sluice::api
