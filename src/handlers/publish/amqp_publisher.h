// AmqpPublisher: publishing to an AMQP 0-9-1 broker (RabbitMQ: Mozilla Pulse), for the publish
// handler's amqp:// target. The only translation unit that includes librabbitmq.
//
// One connection and one channel in confirm mode, opened on first use and again after any
// failure; the exchange is declared (durable, topic, as Pulse publishers declare theirs). Messages
// are JSON bodies, persistent (delivery mode 2), published to one exchange with their own routing
// keys; a message counts as sent only once the broker confirmed it (publisher confirms). The
// password is never part of what is logged or returned. Thread-safe: publications are serialised on
// the one channel.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

struct AmqpOptions {
  std::string url;        // amqp://USER[:PASSWORD]@HOST[:PORT]/VHOST (a password here is allowed
                          // but a file or the environment is better)
  std::string password;   // used when the URL has none
  std::string exchange;   // where messages go (required)
  double timeout_s = 30;  // to connect, and for the broker to confirm a batch
};

struct AmqpMessage {
  std::string routing_key;
  std::string body;        // JSON
  std::string message_id;  // lets a consumer drop a message published twice
};

class AmqpPublisher {
 public:
  // InvalidArgument for a URL that is not amqp(s)://… or a missing exchange. Does not
  // connect.
  static Result<std::unique_ptr<AmqpPublisher>> Create(AmqpOptions options);
  ~AmqpPublisher();

  // Publishes `messages` in order and waits for the broker's confirms. *confirmed: how many
  // from the front were confirmed (all, on OK). Unavailable, saying why, when the broker
  // cannot be reached, refuses them or does not confirm in time; the connection is then
  // opened anew next time.
  Status Publish(const std::vector<AmqpMessage>& messages, size_t* confirmed);

  // The target without its password: "amqp://guest@127.0.0.1:5672/%2F exchange X".
  const std::string& description() const { return description_; }

  struct Connection;

 private:
  explicit AmqpPublisher(AmqpOptions options);
  Status Connect();
  void Disconnect();

  AmqpOptions options_;
  std::string user_, host_, vhost_, password_;
  int port_ = 5672;
  bool tls_ = false;  // amqps://
  std::string description_;
  std::mutex mu_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace sluice
