// HttpServer: the only translation unit that includes Boost.Beast and Asio.
#include "api/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>

namespace sluice::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool IsLoopback(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Router* router, const HttpServerOptions& options)
      : stream_(std::move(socket)), router_(router), options_(options) {}

  void Run() { ReadRequest(); }

 private:
  void ReadRequest() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(options_.request_timeout_s * 1000)));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Send(HttpResponse::Error(413, "payload_too_large",
                                      "the body is over the limit of " +
                                          std::to_string(options_.max_body_bytes) +
                                          " bytes (--max-body-bytes)"),
                  false);
    }
    if (ec == http::error::header_limit) {
      return Send(HttpResponse::Error(431, "headers_too_large", "request headers too large"),
                  false);
    }
    if (ec) {
      return Send(HttpResponse::Error(400, "bad_request", "malformed HTTP: " + ec.message()),
                  false);
    }
    auto& req = parser_->get();
    auto parsed =
        HttpRequest::FromTarget(std::string(req.method_string()),
                                std::string_view(req.target().data(), req.target().size()));
    if (!parsed.ok()) return Send(HttpResponse::FromStatus(parsed.status()), false);
    for (const auto& field : req) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      parsed->headers[name] = std::string(field.value());
    }
    parsed->body = std::move(req.body());
    head_ = req.method() == http::verb::head;
    bool keep_alive = req.keep_alive();
    // The answer may come later from another thread (a submission waits for its commit):
    // it is posted back to this connection's strand.
    router_->HandleAsync(*parsed, [self = shared_from_this(), keep_alive](HttpResponse resp) {
      asio::post(self->stream_.get_executor(),
                 [self, resp = std::move(resp), keep_alive]() mutable {
                   self->Send(std::move(resp), keep_alive);
                 });
    });
  }

  void Send(HttpResponse r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->result(static_cast<unsigned>(r.status));
    res->version(11);
    res->set(http::field::server, "sluice");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    res->body() = head_ ? std::string() : std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(options_.request_timeout_s * 1000)));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (ec || !res->keep_alive()) return self->Close();
                        self->ReadRequest();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const Router* router_;
  const HttpServerOptions& options_;
  bool head_ = false;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  const Router* router = nullptr;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;
  uint16_t port = 0;
  bool stopped = false;

  void Accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Session>(std::move(s), router, options)->Run();
      } else {
        spdlog::warn("api: accept failed: {}", ec.message());
      }
      if (acceptor.is_open()) Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      const Router* router) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->router = router;
  boost::system::error_code ec;
  std::string host = options.host == "localhost" ? "127.0.0.1" : options.host;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("--host '" + options.host + "' is not an IP address");
  tcp::endpoint endpoint(addr, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + options.host + ":" +
                               std::to_string(options.port) + ": " + ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "sluice-http");
    raw->io.run();
  });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace sluice::api
