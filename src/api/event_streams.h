// The two streamed bodies built on EventFeed:
//
//   SseStream      GET /api/v1/events: Server-Sent Events, "id:" on every frame, a comment
//                  keepalive, "event: lagged" (then the end) for a reader too far behind,
//                  "event: truncated" first when the resume point is older than what the
//                  store keeps (retention removed events the reader never saw).
//   JobLogStream   GET /api/v1/jobs/{id}/log?follow=1: the job's log as text, live, ending
//                  with an end-of-log line once the job is final.
#pragma once

#include <memory>
#include <string>

#include "api/event_feed.h"
#include "api/http_types.h"

namespace sluice::api {

// One SSE frame for `e`.
std::string SseFrame(const Event& e);
// One line (with "\n") of a job's text log for `e`: a state change or a log line.
std::string LogLine(const Event& e);
// The line that ends a final job's log.
std::string EndOfLog(int64_t job_id, std::string_view state);

class SseStream : public BodyStream {
 public:
  SseStream(std::unique_ptr<EventFeed> feed, std::string keepalive);
  void Start(std::function<void()> wake) override;
  bool Read(std::vector<Chunk>* out) override;
  bool HasMore() const override { return feed_->more(); }
  std::string Keepalive() const override { return keepalive_; }

 private:
  std::unique_ptr<EventFeed> feed_;
  std::string keepalive_;
  int64_t resume_from_;
  bool first_ = true;
};

class JobLogStream : public BodyStream {
 public:
  JobLogStream(std::unique_ptr<EventFeed> feed, int64_t job_id);
  void Start(std::function<void()> wake) override;
  bool Read(std::vector<Chunk>* out) override;
  bool HasMore() const override { return feed_->more(); }

 private:
  std::unique_ptr<EventFeed> feed_;
  int64_t job_id_;
};

}  // namespace sluice::api
