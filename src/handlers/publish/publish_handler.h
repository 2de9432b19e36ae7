// The publish handler (Mozilla's pulse_publisher): a job is a JSON list of events (or one
// event object). An event's routing key is its "routing_key" (or, as pulse_publisher's
// buildbot events, its "event"); events whose key matches the skip regex (searched, as
// Python's re.search) are not sent. Two targets:
// - http(s)://: events are POSTed as JSON arrays of up to 50 (extra headers, a bearer
//   token); each batch carries "Idempotency-Key: <job name>:<sha256 of the job>:<batch>".
// - amqp://: each event is one persistent JSON message to an exchange (Mozilla Pulse is
//   RabbitMQ) with its routing key, in publisher-confirm mode; message_id
//   "<job name>:<sha256 of the job>:<event index>".
// Any failure (no answer, a non-2xx status, a lost connection, a nack) fails the job with a
// retryable error; the engine retries it later, and the retry resumes after the last batch
// the endpoint accepted or the last event the broker confirmed (progress is kept in the
// store), so nothing acknowledged is sent again. The keys and ids let a receiver drop the
// one window a crash can repeat (acknowledged, but not yet recorded here).
#pragma once

#include <rapidjson/fwd.h>
#include <re2/re2.h>

#include <memory>
#include <string>
#include <vector>

#include "handlers/handler.h"
#include "handlers/publish/amqp_publisher.h"
#include "store/store.h"

namespace sluice {

struct PublishOptions {
  std::string url;                   // the endpoint (required): http(s):// or amqp://
  std::vector<std::string> headers;  // http: "Name: value"
  std::string token;     // http: sent as "Authorization: Bearer <token>"; amqp: the password
  std::string exchange;  // amqp: where messages go (required there)
  std::string skip_routing_keys;  // RE2, searched in the routing key (anchor with ^ and $)
  size_t batch_size = 50;         // http: events per POST; amqp: events per confirm wait
  double timeout_s = 30;
};

class PublishHandler : public Handler {
 public:
  // InvalidArgument for a missing or unknown URL, an amqp:// one without an exchange, or a
  // bad regex. Does not connect.
  static Result<std::unique_ptr<PublishHandler>> Create(PublishOptions options, Store* store);
  std::string_view kind() const override { return "publish"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext& ctx, HandlerOutput* out) override;

 private:
  PublishHandler(PublishOptions options, Store* store);
  // POSTs one batch; OK on a 2xx answer.
  Status Post(const std::string& body, const std::string& idempotency_key) const;
  // Sends events[done..] by HTTP batches or AMQP messages, recording progress under `key`.
  Status SendHttp(const std::vector<const rapidjson::Value*>& events, const std::string& key,
                  const HandlerContext& ctx, HandlerOutput* out);
  Status SendAmqp(const std::vector<const rapidjson::Value*>& events, const std::string& key,
                  const HandlerContext& ctx, HandlerOutput* out);
  size_t Progress(const char* ns, const std::string& key) const;

  PublishOptions options_;
  std::string shown_url_;  // options_.url without a password, for messages
  Store* store_;
  std::unique_ptr<RE2> skip_;
  std::unique_ptr<AmqpPublisher> amqp_;  // for an amqp:// URL
  std::vector<TableSpec> tables_;
};

}  // namespace sluice
