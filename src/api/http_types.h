// HTTP requests and responses as the router sees them: plain structs, no Beast types, so
// routing is testable without sockets and Beast stays in http_server.cc.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice::api {

struct HttpRequest {
  std::string method;                          // "GET", "POST", …
  std::string path;                            // percent-decoded, without the query
  std::map<std::string, std::string> query;    // percent-decoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  // Splits "/a/b?x=1&y=%20" into path and query. InvalidArgument on a bad %-escape.
  static Result<HttpRequest> FromTarget(std::string method, std::string_view target);
  std::optional<std::string> Header(const std::string& lower_name) const;
  std::optional<std::string> Query(const std::string& name) const;
};

// A piece of a streamed body. Pieces are shared, not copied: one SSE frame is the same bytes
// for every reader of the event.
using Chunk = std::shared_ptr<const std::string>;

// A response body produced over time (Server-Sent Events, a followed log). The server calls
// it on its I/O thread; the connection closes when it ends.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // `wake` may be called from any thread when Read has more to give.
  virtual void Start(std::function<void()> wake) = 0;
  // Appends what is ready now to *out (maybe nothing). False once the stream is over, after
  // its last bytes. The server calls it again after each wake, and after each write while
  // HasMore says it has more ready.
  virtual bool Read(std::vector<Chunk>* out) = 0;
  // After a Read: whether more may be ready without a wake (a read cut at a chunk's size).
  virtual bool HasMore() const { return true; }
  // Bytes to send after a quiet while (an SSE comment), or empty for none.
  virtual std::string Keepalive() const { return {}; }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<BodyStream> stream;  // set: the body comes from it, not from `body`

  static HttpResponse Json(int status, std::string body);
  // {"error": {"code": CODE, "message": MESSAGE}}
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
  // The one mapping of a Status to an HTTP error: InvalidArgument 400, NotFound 404,
  // AlreadyExists and FailedPrecondition 409, Unavailable 503, anything else 500.
  static HttpResponse FromStatus(const Status& st);
};

}  // namespace sluice::api
