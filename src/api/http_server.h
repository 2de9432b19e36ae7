// HttpServer: an asynchronous HTTP/1.1 server (Boost.Asio + Beast, kept in http_server.cc
// only) that hands each request to a Router. Keep-alive; a body limit answered with 413; a
// timeout for a request to arrive (header and body) that also closes idle connections.
// One I/O thread serves every connection, so idle connections cost no threads. A response
// with a BodyStream (SSE, followed logs) is written as it comes, then the connection closes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "api/router.h"
#include "core/status.h"

namespace sluice::api {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: an ephemeral port (see port())
  size_t max_body_bytes = 8u << 20;
  // Request bodies being read at once, in bytes, across connections (at least one whole
  // max_body_bytes): more are answered 503 without being read.
  uint64_t max_body_memory = 256ull << 20;
  double request_timeout_s = 30;  // a request must arrive within this; idle connections close;
                                  // a streamed write must finish within it too
  double keepalive_s = 15;        // a streamed body quiet this long gets its keepalive bytes
};

class HttpServer {
 public:
  // Binds, listens and starts serving on a thread of its own.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   const Router* router);
  ~HttpServer();
  uint16_t port() const;
  // Stops accepting, closes connections, joins the thread. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::api
