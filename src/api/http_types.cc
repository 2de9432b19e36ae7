// Parsing of request targets and building of JSON responses.
#include "api/http_types.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/percent.h"
#include "core/text.h"

namespace sluice::api {

constexpr std::string_view kTarget = "the request target";

Result<HttpRequest> HttpRequest::FromTarget(std::string method, std::string_view target) {
  HttpRequest r;
  r.method = std::move(method);
  size_t q = target.find('?');
  std::string_view raw = target.substr(0, q);
  // "/tasks/" is "/tasks" (Arthur's server takes both). Stripped before decoding, so an id
  // ending with an encoded slash ("/task/a%2F") keeps it.
  if (raw.size() > 1 && raw.back() == '/') raw.remove_suffix(1);
  auto path = PercentDecode(raw, false, kTarget);
  if (!path.ok()) return path.status();
  r.path = std::move(*path);
  if (q == std::string_view::npos) return r;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true, kTarget);
    auto value =
        PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true, kTarget);
    if (!key.ok()) return key.status();
    if (!value.ok()) return value.status();
    r.query[*key] = *value;
  }
  return r;
}

std::optional<std::string> HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> HttpRequest::Query(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  // Messages quote what the client sent (a path with %ff in it): never echoed as bytes that
  // are not UTF-8.
  std::string valid = ValidUtf8(message);
  message = valid;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(code.data(), static_cast<rapidjson::SizeType>(code.size()));
  w.Key("message");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndObject();
  w.EndObject();
  return Json(status, std::string(buf.GetString(), buf.GetSize()));
}

HttpResponse HttpResponse::FromStatus(const Status& st) {
  switch (st.code()) {
    case Code::kOk:
      return Json(200, "{}");
    case Code::kInvalidArgument:
      return Error(400, "invalid_argument", st.message());
    case Code::kNotFound:
      return Error(404, "not_found", st.message());
    case Code::kAlreadyExists:
      return Error(409, "already_exists", st.message());
    case Code::kFailedPrecondition:
      return Error(409, "failed_precondition", st.message());
    case Code::kUnavailable:
      return Error(503, "unavailable", st.message());
    default:
      return Error(500, "internal", st.message());
  }
}

}  // namespace sluice::api
