// AmqpPublisher: librabbitmq (rabbitmq-c), a channel in confirm mode, acks counted by tag.
#include "handlers/publish/amqp_publisher.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <chrono>
#include <cstring>
#include <set>

#include "core/clock.h"

namespace sluice {
namespace {

constexpr amqp_channel_t kChannel = 1;

std::string Bytes(amqp_bytes_t b) {
  return b.bytes == nullptr ? "" : std::string(static_cast<const char*>(b.bytes), b.len);
}

amqp_bytes_t View(const std::string& s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

// What an RPC reply says when it is not a success.
std::string ReplyError(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "";
    case AMQP_RESPONSE_NONE:
      return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return "the broker closed the connection: " + std::to_string(m->reply_code) + " " +
               Bytes(m->reply_text);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return "the broker closed the channel: " + std::to_string(m->reply_code) + " " +
               Bytes(m->reply_text);
      }
      return "the broker answered method " + std::to_string(r.reply.id);
  }
  return "unknown reply";
}

timeval Timeval(double seconds) {
  int64_t us = SecondsToMicros(seconds);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

}  // namespace

struct AmqpPublisher::Connection {
  amqp_connection_state_t state = nullptr;
  uint64_t next_tag = 1;  // the delivery tag of the next message published on the channel
  ~Connection() {
    if (state != nullptr) {
      // Best effort: the peer may be gone already.
      amqp_channel_close(state, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(state, AMQP_REPLY_SUCCESS);
      amqp_destroy_connection(state);
    }
  }
};

Result<std::unique_ptr<AmqpPublisher>> AmqpPublisher::Create(AmqpOptions options) {
  if (options.exchange.empty()) {
    return Status::InvalidArgument("an amqp:// --publish-url needs --publish-exchange");
  }
  std::unique_ptr<AmqpPublisher> p(new AmqpPublisher(std::move(options)));
  std::string url = p->options_.url;
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  bool scheme = url.rfind("amqp://", 0) == 0 || url.rfind("amqps://", 0) == 0;
  if (!scheme || amqp_parse_url(url.data(), &info) != AMQP_STATUS_OK) {
    return Status::InvalidArgument(
        "--publish-url is not an AMQP URL like amqp(s)://USER@HOST:PORT/VHOST");
  }
  p->tls_ = info.ssl != 0;
  p->user_ = info.user != nullptr ? info.user : "guest";
  p->host_ = info.host != nullptr ? info.host : "localhost";
  p->port_ = info.port;
  // "amqp://host/" is vhost "/", as Python clients (pika, kombu) read it.
  p->vhost_ = info.vhost != nullptr && info.vhost[0] != 0 ? info.vhost : "/";
  // The URL's password only when it has one (amqp_parse_url defaults it to "guest").
  bool url_password =
      p->options_.url.find('@') != std::string::npos &&
      p->options_.url.substr(7, p->options_.url.find('@') - 7).find(':') != std::string::npos;
  p->password_ =
      url_password ? (info.password != nullptr ? info.password : "") : p->options_.password;
  if (p->password_.empty()) p->password_ = "guest";
  p->description_ = std::string(p->tls_ ? "amqps://" : "amqp://") + p->user_ + "@" + p->host_ +
                    ":" + std::to_string(p->port_) + "/" + (p->vhost_ == "/" ? "%2F" : p->vhost_) +
                    " exchange " + p->options_.exchange;
  return p;
}

AmqpPublisher::AmqpPublisher(AmqpOptions options) : options_(std::move(options)) {}

AmqpPublisher::~AmqpPublisher() { Disconnect(); }

void AmqpPublisher::Disconnect() { conn_.reset(); }

Status AmqpPublisher::Connect() {
  auto c = std::make_unique<Connection>();
  c->state = amqp_new_connection();
  if (c->state == nullptr) return Status::Unavailable("cannot allocate an AMQP connection");
  amqp_socket_t* socket = tls_ ? amqp_ssl_socket_new(c->state) : amqp_tcp_socket_new(c->state);
  if (socket == nullptr) return Status::Unavailable("cannot make an AMQP socket");
  if (tls_) {
    // The broker's certificate must chain to a trusted CA (the system's, or SSL_CERT_FILE /
    // SSL_CERT_DIR) and name the host.
    auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
    SSL_CTX_set_default_verify_paths(ctx);
    amqp_ssl_socket_set_verify_peer(socket, 1);
    amqp_ssl_socket_set_verify_hostname(socket, 1);
  }
  timeval tv = Timeval(options_.timeout_s);
  int rc = amqp_socket_open_noblock(socket, host_.c_str(), port_, &tv);
  auto fail = [this](const std::string& why) {
    return Status::Unavailable("AMQP " + description_ + ": " + why);
  };
  if (rc != AMQP_STATUS_OK) return fail(std::string("cannot connect: ") + amqp_error_string2(rc));
  amqp_set_handshake_timeout(c->state, &tv);
  amqp_set_rpc_timeout(c->state, &tv);
  amqp_rpc_reply_t r = amqp_login(c->state, vhost_.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                  user_.c_str(), password_.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL) return fail("cannot log in: " + ReplyError(r));
  amqp_channel_open(c->state, kChannel);
  r = amqp_get_rpc_reply(c->state);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) return fail("cannot open a channel: " + ReplyError(r));
  // As Pulse publishers (kombu) do: the exchange is a durable topic exchange, declared if it
  // is not there; one of another kind is an error the broker names (406 PRECONDITION_FAILED).
  amqp_exchange_declare(c->state, kChannel, View(options_.exchange), amqp_cstring_bytes("topic"), 0,
                        1, 0, 0, amqp_empty_table);
  r = amqp_get_rpc_reply(c->state);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail("cannot declare the exchange: " + ReplyError(r));
  }
  amqp_confirm_select(c->state, kChannel);
  r = amqp_get_rpc_reply(c->state);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail("no publisher confirms: " + ReplyError(r));
  }
  conn_ = std::move(c);
  return Status::Ok();
}

Status AmqpPublisher::Publish(const std::vector<AmqpMessage>& messages, size_t* confirmed) {
  *confirmed = 0;
  if (messages.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (!conn_) SLUICE_RETURN_IF_ERROR(Connect());
  Connection& c = *conn_;
  auto fail = [this](const std::string& why) {
    Disconnect();  // anything may be half done on this connection: the next call starts anew
    return Status::Unavailable("AMQP " + description_ + ": " + why);
  };
  uint64_t first = c.next_tag;
  for (const AmqpMessage& m : messages) {
    amqp_basic_properties_t props;
    std::memset(&props, 0, sizeof(props));
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;  // persistent
    props.message_id = View(m.message_id);
    int rc = amqp_basic_publish(c.state, kChannel, View(options_.exchange), View(m.routing_key), 0,
                                0, &props, View(m.body));
    if (rc != AMQP_STATUS_OK) {
      return fail(std::string("cannot publish: ") + amqp_error_string2(rc));
    }
    c.next_tag++;
  }
  // The broker's confirms: basic.ack (one tag, or every tag up to it with `multiple`).
  std::set<uint64_t> acked;
  uint64_t through = first - 1;  // every tag up to this one is confirmed
  uint64_t last = c.next_tag - 1;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(SecondsToMicros(options_.timeout_s));
  while (through < last) {
    *confirmed = static_cast<size_t>(through - first + 1);
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      return fail("the broker did not confirm " + std::to_string(last - through) +
                  " messages in time");
    }
    timeval tv = Timeval(std::chrono::duration<double>(left).count());
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame_noblock(c.state, &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) continue;
    if (rc != AMQP_STATUS_OK)
      return fail(std::string("connection lost: ") + amqp_error_string2(rc));
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        if (ack->multiple) {
          for (uint64_t t = through + 1; t <= ack->delivery_tag; ++t) acked.insert(t);
        } else {
          acked.insert(ack->delivery_tag);
        }
        while (acked.count(through + 1)) acked.erase(++through);
        break;
      }
      case AMQP_BASIC_NACK_METHOD:
        *confirmed = static_cast<size_t>(through - first + 1);
        return fail("the broker refused a message (basic.nack)");
      case AMQP_CHANNEL_CLOSE_METHOD: {
        auto* m = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
        std::string why = std::to_string(m->reply_code) + " " + Bytes(m->reply_text);
        amqp_channel_close_ok_t ok;
        amqp_send_method(c.state, kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        *confirmed = static_cast<size_t>(through - first + 1);
        return fail("the broker closed the channel: " + why);
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        auto* m = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
        std::string why = std::to_string(m->reply_code) + " " + Bytes(m->reply_text);
        *confirmed = static_cast<size_t>(through - first + 1);
        return fail("the broker closed the connection: " + why);
      }
      default:
        break;
    }
  }
  *confirmed = messages.size();
  return Status::Ok();
}

}  // namespace sluice
