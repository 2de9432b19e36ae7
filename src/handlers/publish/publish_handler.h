// The publish handler (Mozilla's pulse_publisher): a job is a JSON list of events (or one
// event object). Events go by HTTP POST, as JSON arrays of up to 50, to a configured
// endpoint (extra headers, a bearer token), skipping events whose "routing_key" matches a
// regex. Any failure (no answer, a non-2xx status) fails the job with a retryable error; the
// engine retries it later, and the retry resumes after the last batch the endpoint accepted
// (progress is kept in the store), so a batch is not sent again once it was acknowledged.
// Each batch carries "Idempotency-Key: <job name>:<sha256 of the job>:<batch number>" for
// receivers that want exactly-once even across a crash between their 2xx and our record of
// it.
#pragma once

#include <re2/re2.h>

#include <memory>
#include <string>
#include <vector>

#include "handlers/handler.h"
#include "store/store.h"

namespace sluice {

struct PublishOptions {
  std::string url;                   // the endpoint (required)
  std::vector<std::string> headers;  // "Name: value"
  std::string token;                 // sent as "Authorization: Bearer <token>" when set
  std::string skip_routing_keys;     // RE2, matched against the whole routing key
  size_t batch_size = 50;
  double timeout_s = 30;
};

class PublishHandler : public Handler {
 public:
  // InvalidArgument for a missing URL or a bad regex.
  static Result<std::unique_ptr<PublishHandler>> Create(PublishOptions options, Store* store);
  std::string_view kind() const override { return "publish"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext& ctx, HandlerOutput* out) override;

 private:
  PublishHandler(PublishOptions options, Store* store);
  // POSTs one batch; OK on a 2xx answer.
  Status Post(const std::string& body, const std::string& idempotency_key) const;

  PublishOptions options_;
  Store* store_;
  std::unique_ptr<RE2> skip_;
  std::vector<TableSpec> tables_;
};

}  // namespace sluice
