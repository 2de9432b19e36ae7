// PublishHandler: parse the events, drop the skipped ones, send them (HTTP batches or AMQP
// messages), remember how far the endpoint acknowledged them.
#include "handlers/publish/publish_handler.h"

#include <curl/curl.h>
#include <openssl/sha.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>

#include "core/json.h"
#include "core/text.h"

namespace sluice {
namespace {

constexpr const char* kProgressNs = "publish_progress";    // job key -> batches accepted
constexpr const char* kConfirmedNs = "publish_confirmed";  // job key -> events confirmed

size_t Collect(char* data, size_t size, size_t n, void* out) {
  std::string* s = static_cast<std::string*>(out);
  if (s->size() < 512) s->append(data, std::min<size_t>(size * n, 512 - s->size()));
  return size * n;
}

std::string Sha256Hex(const std::string& s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  std::string out;
  char buf[3];
  for (unsigned char c : d) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    out += buf;
  }
  return out;
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// `url` without the password of its user part (scheme://USER:PASSWORD@HOST...).
std::string WithoutPassword(const std::string& url) {
  size_t authority = url.find("://");
  if (authority == std::string::npos) return url;
  authority += 3;
  size_t end = url.find_first_of("/?#", authority);
  if (end == std::string::npos) end = url.size();
  size_t at = url.rfind('@', end);
  if (at == std::string::npos || at < authority) return url;
  size_t colon = url.find(':', authority);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + url.substr(at);
}

// An event's routing key: "routing_key", else "event" (pulse_publisher's buildbot events),
// else none ("").
std::string RoutingKey(const rapidjson::Value& e) {
  for (const char* field : {"routing_key", "event"}) {
    auto m = e.FindMember(field);
    if (m != e.MemberEnd() && m->value.IsString()) return JsonStr(m->value);
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<PublishHandler>> PublishHandler::Create(PublishOptions options,
                                                               Store* store) {
  if (options.url.empty()) {
    return Status::InvalidArgument("the publish handler needs --publish-url");
  }
  if (options.batch_size == 0) options.batch_size = 50;
  std::unique_ptr<PublishHandler> h(new PublishHandler(std::move(options), store));
  const std::string& url = h->options_.url;
  h->shown_url_ = WithoutPassword(url);
  if (url.rfind("amqp://", 0) == 0 || url.rfind("amqps://", 0) == 0) {
    auto amqp = AmqpPublisher::Create(
        AmqpOptions{url, h->options_.token, h->options_.exchange, h->options_.timeout_s});
    if (!amqp.ok()) return amqp.status();
    h->amqp_ = std::move(*amqp);
  } else if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("--publish-url '" + PrintableLine(url) +
                                   "' is neither http(s):// nor amqp://");
  } else if (!h->options_.exchange.empty()) {
    return Status::InvalidArgument("--publish-exchange is for an amqp:// --publish-url");
  }
  if (!h->options_.skip_routing_keys.empty()) {
    h->skip_ = std::make_unique<RE2>(h->options_.skip_routing_keys, RE2::Quiet);
    if (!h->skip_->ok()) {
      return Status::InvalidArgument("--publish-skip '" + h->options_.skip_routing_keys +
                                     "' is not a regular expression: " + h->skip_->error());
    }
  }
  for (const std::string& header : h->options_.headers) {
    if (header.find(':') == std::string::npos || header.find('\n') != std::string::npos) {
      return Status::InvalidArgument("--publish-header '" + header + "' is not 'Name: value'");
    }
  }
  return h;
}

PublishHandler::PublishHandler(PublishOptions options, Store* store)
    : options_(std::move(options)), store_(store) {}

Status PublishHandler::Post(const std::string& body, const std::string& idempotency_key) const {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Status::Unavailable("curl_easy_init failed");
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, ("Idempotency-Key: " + idempotency_key).c_str());
  if (!options_.token.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + options_.token).c_str());
  }
  for (const std::string& h : options_.headers) headers = curl_slist_append(headers, h.c_str());
  std::string answer;
  curl_easy_setopt(curl, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Status::Unavailable("cannot reach " + shown_url_ + ": " + curl_easy_strerror(rc));
  }
  if (status < 200 || status >= 300) {
    while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r')) answer.pop_back();
    return Status::Unavailable(shown_url_ + " answered " + std::to_string(status) +
                               (answer.empty() ? "" : ": " + answer));
  }
  return Status::Ok();
}

size_t PublishHandler::Progress(const char* ns, const std::string& key) const {
  if (store_ == nullptr) return 0;
  auto v = store_->GetValue(ns, key);
  if (!v.ok() || !v->has_value()) return 0;
  return std::strtoull((*v)->c_str(), nullptr, 10);
}

Status PublishHandler::SendHttp(const std::vector<const rapidjson::Value*>& events,
                                const std::string& key, const HandlerContext& ctx,
                                HandlerOutput* out) {
  size_t done = Progress(kProgressNs, key);
  size_t batches = (events.size() + options_.batch_size - 1) / options_.batch_size;
  if (done > 0) {
    out->log.push_back("resuming after " + std::to_string(done) + " of " + std::to_string(batches) +
                       " batches accepted earlier");
  }
  for (size_t b = done; b < batches; ++b) {
    std::string body = "[";
    for (size_t i = b * options_.batch_size;
         i < std::min(events.size(), (b + 1) * options_.batch_size); ++i) {
      if (body.size() > 1) body += ",";
      body += Serialize(*events[i]);
    }
    body += "]";
    if (ctx.heartbeat) ctx.heartbeat();
    Status st = Post(body, key + ":" + std::to_string(b));
    if (!st.ok()) {
      out->error_code = "publish_failed";
      out->log.push_back("batch " + std::to_string(b + 1) + " of " + std::to_string(batches) +
                         ": " + st.message());
      return st;
    }
    if (store_ != nullptr) {
      Status rec = store_->PutValue(kProgressNs, key, std::to_string(b + 1));
      if (!rec.ok()) return rec.Annotate("recording the batches published");
    }
  }
  out->log.push_back("published " + std::to_string(events.size()) + " events in " +
                     std::to_string(batches) + " batches");
  return Status::Ok();
}

Status PublishHandler::SendAmqp(const std::vector<const rapidjson::Value*>& events,
                                const std::string& key, const HandlerContext& ctx,
                                HandlerOutput* out) {
  size_t done = std::min(Progress(kConfirmedNs, key), events.size());
  if (done > 0) {
    out->log.push_back("resuming after " + std::to_string(done) + " of " +
                       std::to_string(events.size()) + " events confirmed earlier");
  }
  while (done < events.size()) {
    std::vector<AmqpMessage> batch;
    for (size_t i = done; i < std::min(events.size(), done + options_.batch_size); ++i) {
      batch.push_back(AmqpMessage{RoutingKey(*events[i]), Serialize(*events[i]),
                                  key + ":" + std::to_string(i)});
    }
    if (ctx.heartbeat) ctx.heartbeat();
    size_t confirmed = 0;
    Status st = amqp_->Publish(batch, &confirmed);
    if (confirmed > 0 && store_ != nullptr) {
      Status rec = store_->PutValue(kConfirmedNs, key, std::to_string(done + confirmed));
      if (!rec.ok()) return rec.Annotate("recording the events confirmed");
    }
    done += confirmed;
    if (!st.ok()) {
      out->error_code = "publish_failed";
      out->log.push_back(std::to_string(done) + " of " + std::to_string(events.size()) +
                         " events confirmed: " + st.message());
      return st;
    }
  }
  out->log.push_back("published " + std::to_string(events.size()) + " events to " +
                     amqp_->description());
  return Status::Ok();
}

Status PublishHandler::Run(const HandlerContext& ctx, HandlerOutput* out) {
  std::string text;
  std::string name = ctx.path.substr(ctx.path.find_last_of('/') + 1);
  SLUICE_RETURN_IF_ERROR(ReadJobInput(ctx, &text, out));
  rapidjson::Document d;
  Status parsed = ParseJson(text, &d);
  if (!parsed.ok() || !(d.IsArray() || d.IsObject())) {
    out->error_code = "invalid_job";
    return Status::InvalidArgument((parsed.ok() ? std::string() : parsed.message() + ": ") +
                                   "give a JSON list of events (or one event object)");
  }
  std::vector<const rapidjson::Value*> events;
  size_t skipped = 0;
  auto consider = [&](const rapidjson::Value& e, size_t index) -> Status {
    if (!e.IsObject()) {
      return Status::InvalidArgument("event " + std::to_string(index) +
                                     " is not a JSON object: every event must be one");
    }
    std::string rk = RoutingKey(e);
    if (amqp_ && rk.empty()) {
      return Status::InvalidArgument("event " + std::to_string(index) +
                                     " has no \"routing_key\" (nor \"event\") string");
    }
    if (amqp_ && rk.size() > 255) {
      return Status::InvalidArgument("event " + std::to_string(index) +
                                     ": an AMQP routing key has at most 255 bytes, this one " +
                                     std::to_string(rk.size()));
    }
    if (skip_ && !rk.empty() && RE2::PartialMatch(rk, *skip_)) {
      ++skipped;
      return Status::Ok();
    }
    events.push_back(&e);
    return Status::Ok();
  };
  Status considered = Status::Ok();
  if (d.IsArray()) {
    size_t index = 0;
    for (auto& e : d.GetArray()) {
      considered = consider(e, index++);
      if (!considered.ok()) break;
    }
  } else {
    considered = consider(d, 0);
  }
  if (!considered.ok()) {
    out->error_code = "invalid_job";
    return considered;
  }
  // What the endpoint already acknowledged (an earlier attempt of this job) is not sent again.
  std::string key = name + ":" + Sha256Hex(text);
  Status sent = amqp_ ? SendAmqp(events, key, ctx, out) : SendHttp(events, key, ctx, out);
  if (!sent.ok()) return sent;
  size_t batches = (events.size() + options_.batch_size - 1) / options_.batch_size;
  char summary[160];
  std::snprintf(summary, sizeof(summary), "{\"published\":%zu,\"skipped\":%zu,\"batches\":%zu}",
                events.size(), skipped, batches);
  out->summary = summary;
  out->log.push_back("skipped " + std::to_string(skipped) + " events");
  return Status::Ok();
}

}  // namespace sluice
