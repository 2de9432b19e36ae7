// The dashboard's files (web/, compiled into the binary) and the browser session routes.
#include <openssl/sha.h>

#include <cstdio>
#include <iterator>
#include <vector>

#include "api/router.h"
#include "core/embedded.h"
#include "core/json.h"

namespace sluice::api {
namespace {

struct WebFile {
  const char* url;
  const char* path;  // in the embedded table
  const char* type;
};

constexpr WebFile kFiles[] = {
    {"/", "web/index.html", "text/html; charset=utf-8"},
    {"/ui/app.js", "web/app.js", "text/javascript; charset=utf-8"},
    {"/ui/app.css", "web/app.css", "text/css; charset=utf-8"},
    {"/ui/icon.svg", "web/icon.svg", "image/svg+xml"},
};

// No inline script or style, nothing from another origin, no framing.
constexpr char kPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

std::string Etag(std::string_view data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  char hex[35] = "\"";
  for (int i = 0; i < 16; ++i) std::snprintf(hex + 1 + 2 * i, 3, "%02x", d[i]);
  hex[33] = '"';
  hex[34] = 0;
  return hex;
}

void Harden(HttpResponse* resp) {
  resp->headers.emplace_back("Content-Security-Policy", kPolicy);
  resp->headers.emplace_back("X-Content-Type-Options", "nosniff");
  resp->headers.emplace_back("Referrer-Policy", "no-referrer");
  resp->headers.emplace_back("X-Frame-Options", "DENY");
}

std::string CookieFor(const std::string& id, bool end) {
  return std::string(Sessions::kCookie) + "=" + id + "; Path=/; HttpOnly; SameSite=Strict" +
         (end ? "; Max-Age=0" : "");
}

}  // namespace

bool IsWebPath(const std::string& path) {
  for (const WebFile& f : kFiles) {
    if (path == f.url) return true;
  }
  return path == "/api/v1/session";
}

HttpResponse Router::Web(const HttpRequest& r) const {
  if (r.path == "/api/v1/session") return Session(r);
  if (r.method != "GET" && r.method != "HEAD") {
    return HttpResponse::Error(405, "method_not_allowed", "use GET");
  }
  // The files never change while the binary runs: their tags are computed once.
  static const std::vector<std::string> kTags = [] {
    std::vector<std::string> tags;
    for (const WebFile& f : kFiles) {
      auto data = EmbeddedFile(f.path);
      tags.push_back(data ? Etag(*data) : "");
    }
    return tags;
  }();
  for (size_t i = 0; i < std::size(kFiles); ++i) {
    const WebFile& f = kFiles[i];
    if (r.path != f.url) continue;
    auto data = EmbeddedFile(f.path);
    if (!data) return HttpResponse::Error(404, "not_found", "no route for " + r.path);
    HttpResponse resp;
    const std::string& tag = kTags[i];
    resp.headers.emplace_back("ETag", tag);
    // Always asked again, answered 304 while unchanged: a new binary's page shows at once.
    resp.headers.emplace_back("Cache-Control", "no-cache");
    Harden(&resp);
    if (r.Header("if-none-match") == tag) {
      resp.status = 304;
      resp.content_type.clear();
      return resp;
    }
    resp.content_type = f.type;
    resp.body.assign(data->data(), data->size());
    return resp;
  }
  return HttpResponse::Error(404, "not_found", "no route for " + r.path);
}

HttpResponse Router::Session(const HttpRequest& r) const {
  auto session = sessions_->FromCookie(r.Header("cookie").value_or(""));
  bool required = !deps_.token.empty();
  if (r.method == "GET" || r.method == "HEAD") {
    std::string body = std::string("{\"token_required\":") + (required ? "true" : "false") +
                       ",\"authenticated\":" + (!required || session ? "true" : "false");
    if (session) body += ",\"csrf\":" + JsonQuote(session->csrf);
    HttpResponse resp = HttpResponse::Json(200, body + "}");
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
  }
  if (r.method == "POST") {
    if (!required) return HttpResponse::Json(200, R"({"token_required":false})");
    rapidjson::Document d;
    if (!ParseJson(r.body, &d).ok() || !d.IsObject() || !d.HasMember("token") ||
        !d["token"].IsString()) {
      return HttpResponse::Error(400, "invalid_argument", "send {\"token\": \"…\"}");
    }
    if (!ConstantTimeEquals(JsonStr(d["token"]), deps_.token)) {
      return HttpResponse::Error(401, "unauthorized", "that is not this server's API token");
    }
    Sessions::Session s = sessions_->Create();
    HttpResponse resp = HttpResponse::Json(200, "{\"csrf\":" + JsonQuote(s.csrf) + "}");
    resp.headers.emplace_back("Set-Cookie", CookieFor(s.id, false));
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
  }
  if (r.method == "DELETE") {
    if (!session) return HttpResponse::Error(401, "unauthorized", "no session to end");
    if (!ConstantTimeEquals(r.Header("x-csrf-token").value_or(""), session->csrf)) {
      return HttpResponse::Error(403, "csrf", "this call needs the session's X-CSRF-Token");
    }
    sessions_->Remove(session->id);
    HttpResponse resp = HttpResponse::Json(200, R"({"logged_out":true})");
    resp.headers.emplace_back("Set-Cookie", CookieFor("", true));
    return resp;
  }
  return HttpResponse::Error(405, "method_not_allowed", "use GET, POST or DELETE");
}

}  // namespace sluice::api
