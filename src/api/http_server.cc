// HttpServer: the only translation unit that includes Boost.Beast and Asio.
#include "api/http_server.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include "core/spdlog.h"

namespace sluice::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr int kStreamSendBuffer = 256 * 1024;

// A response's status line and header fields, ending with `framing` (how the body is
// delimited: its length, or the connection's end) and the blank line.
std::string Head(const HttpResponse& r, std::string_view framing) {
  std::string head;
  head.reserve(128 + framing.size());
  head += "HTTP/1.1 ";
  head += std::to_string(r.status);
  head += ' ';
  beast::string_view reason = http::obsolete_reason(static_cast<http::status>(r.status));
  head.append(reason.data(), reason.size());
  head += "\r\nServer: sluice\r\n";
  if (!r.content_type.empty()) {
    head += "Content-Type: ";
    head += r.content_type;
    head += "\r\n";
  }
  for (const auto& [k, v] : r.headers) {
    head += k;
    head += ": ";
    head += v;
    head += "\r\n";
  }
  head += framing;
  head += "\r\n";
  return head;
}

// A whole response with a body. 1xx, 204 and 304 have neither a body nor a length; the
// answer to HEAD has the length of the body it leaves out.
std::string Whole(const HttpResponse& r, bool keep_alive, bool head_only) {
  bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
  std::string framing;
  if (!bodiless) framing = "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!keep_alive) framing += "Connection: close\r\n";
  std::string wire = Head(r, framing);
  if (!bodiless && !head_only) wire += r.body;
  return wire;
}

// Bytes of request bodies being read, across connections.
class BodyBudget {
 public:
  // Before the first connection.
  void set_limit(uint64_t limit) { limit_ = limit; }
  bool Take(uint64_t n) {
    uint64_t cur = used_.load();
    do {
      if (cur + n > limit_) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n));
    return true;
  }
  void Give(uint64_t n) { used_.fetch_sub(n); }
  uint64_t limit() const { return limit_; }

 private:
  uint64_t limit_ = 0;
  std::atomic<uint64_t> used_{0};
};

class Session;

// Streams with something new to send, gathered from the threads that publish events: one
// post to the I/O thread per burst however many streams it wakes (10,000 SSE readers of one
// event were 10,000 posts), then each is pumped there in turn. Closed when the server stops:
// wakes after that are dropped (a publisher may still hold one).
class WakeList {
 public:
  explicit WakeList(asio::io_context* io) : io_(io) {}
  void Add(std::weak_ptr<Session> session);
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    io_ = nullptr;
  }

 private:
  void Run();
  std::mutex mu_;
  asio::io_context* io_;
  std::vector<std::weak_ptr<Session>> ready_;
  std::vector<std::weak_ptr<Session>> running_;  // the I/O thread's only
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Router* router, const HttpServerOptions& options,
          BodyBudget* body_budget, std::shared_ptr<WakeList> wakes)
      : stream_(std::move(socket)),
        router_(router),
        options_(options),
        body_budget_(body_budget),
        wakes_(std::move(wakes)) {}
  ~Session() { ReleaseBody(); }

  void Run() { ReadRequest(); }

 private:
  friend class WakeList;  // pumps a woken stream

  // The head first: a body is read only once the memory it may take is reserved from the
  // server's budget for bodies in flight (--max-body-memory), so a crowd of clients each
  // sending --max-body-bytes at once cannot make the daemon take all the memory there is.
  void ReadRequest() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(options_.request_timeout_s * 1000)));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  // A client that asked to be told to go on (Expect: 100-continue, as curl does for bodies
  // over 1 MB) is told so once its body can be taken, or gets its final answer at once (it
  // would otherwise wait a second or more before sending the body anyway).
  void OnHeader(beast::error_code ec, std::size_t n) {
    if (ec) return OnRead(ec, n);
    const auto& req = parser_->get();
    bool expects = req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue");
    uint64_t need = 0;
    if (auto length = parser_->content_length()) {
      if (expects && *length > options_.max_body_bytes) return OnRead(http::error::body_limit, 0);
      need = std::min<uint64_t>(*length, options_.max_body_bytes);
    } else if (parser_->chunked()) {
      need = options_.max_body_bytes;
    }
    if (need > 0 && !body_budget_->Take(need)) {
      spdlog::warn("api: {} MB of request bodies in flight already; answering 503",
                   body_budget_->limit() >> 20);
      HttpResponse busy = HttpResponse::Error(
          503, "busy", "too many request bodies in flight (--max-body-memory); try again later");
      busy.headers.emplace_back("Retry-After", "1");
      return Send(std::move(busy), false);
    }
    reserved_ = need;
    if (!expects || need == 0) return ReadBody();
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue),
                      [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                        if (write_ec) return self->Close();  // gone
                        self->ReadBody();
                      });
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void ReleaseBody() {
    if (reserved_ > 0) body_budget_->Give(std::exchange(reserved_, 0));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    ReleaseBody();  // the body is read (or never will be); what it holds now is the request's
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
    // it is posted back to the I/O thread.
    router_->HandleAsync(*parsed, [self = shared_from_this(), keep_alive](HttpResponse resp) {
      asio::post(self->stream_.get_executor(),
                 [self, resp = std::move(resp), keep_alive]() mutable {
                   self->Send(std::move(resp), keep_alive);
                 });
    });
  }

  // The whole answer goes straight to the socket, which takes it at once as long as the
  // client reads; only what it does not take is written asynchronously, under the request
  // timeout.
  void Send(HttpResponse r, bool keep_alive) {
    if (r.stream) return StartStream(std::move(r));
    keep_alive_ = keep_alive;
    out_.push_back(std::make_shared<const std::string>(Whole(r, keep_alive, head_)));
    if (!SendNow()) return Close();  // gone
    if (!out_.empty()) return WriteRest();
    Written();
  }

  // Everything queued is sent: a stream goes on, a whole answer waits for the next request
  // or closes.
  void Written() {
    if (body_) return Pump();
    if (keep_alive_) return ReadRequest();
    Close();
  }

  // A streamed body: the head, then whatever the stream gives, as it gives it.
  void StartStream(HttpResponse r) {
    body_ = std::move(r.stream);
    // A reader that stops reading holds what the kernel buffers for it: bounded (the
    // default grows to 4 MB per socket), so memory stays bounded with many readers, and a
    // slow one falls behind, and is told so, sooner.
    beast::error_code ignored;
    stream_.socket().set_option(asio::socket_base::send_buffer_size(kStreamSendBuffer), ignored);
    out_.push_back(std::make_shared<const std::string>(Head(r, "Connection: close\r\n")));
    if (head_) {
      ended_ = true;
    } else {
      std::weak_ptr<Session> weak = shared_from_this();
      body_->Start([weak, wakes = wakes_] { wakes->Add(weak); });
      WatchForHangup();
      ArmKeepalive();
    }
    Pump();
  }

  // Writes what the stream has ready, nothing copied per reader (a live SSE frame is the
  // same bytes for all of them). First straight to the socket, which takes it whole as long
  // as the reader keeps up: no reactor, timer or completion per frame (at 10,000 readers
  // those were most of an event's fan-out). What the socket does not take is written
  // asynchronously, under the request timeout, and while that write is under way nothing more
  // is read from the stream: its subscription's bounded queue is what a slow reader holds,
  // and past it the reader is told it lagged.
  void Pump() {
    if (writing_ || closed_) return;
    for (int turn = 0; turn < kPumpTurns; ++turn) {
      if (out_.empty() && !ended_ && body_) ended_ = !body_->Read(&out_);
      if (out_.empty()) {
        if (ended_) Close();
        return;
      }
      if (!SendNow()) return Close();  // gone
      if (!out_.empty()) return WriteRest();
      last_write_ = std::chrono::steady_clock::now();
      if (!ended_ && !body_->HasMore()) return;  // the next wake brings more
    }
    // A stream with more and more to give: the other connections get their turn first.
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Pump(); });
  }

  // Sends what the socket takes now without blocking; drops from out_ what went. False: the
  // connection is broken.
  bool SendNow() {
    int fd = stream_.socket().native_handle();
    while (!out_.empty()) {
      iovec iov[kMaxIov];
      size_t n = 0;
      for (; n < out_.size() && n < kMaxIov; ++n) {
        size_t skip = n == 0 ? out_offset_ : 0;
        iov[n].iov_base = const_cast<char*>(out_[n]->data() + skip);
        iov[n].iov_len = out_[n]->size() - skip;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      ssize_t sent = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      size_t left = static_cast<size_t>(sent), done = 0;
      while (done < n && left >= iov[done].iov_len) left -= iov[done++].iov_len;
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(done));
      out_offset_ = done == 0 ? out_offset_ + left : left;
      if (done < n) return true;  // the socket is full
    }
    return true;
  }

  void WriteRest() {
    writing_ = true;
    auto pieces = std::make_shared<std::vector<Chunk>>(std::move(out_));
    out_.clear();
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(pieces->size());
    for (const Chunk& c : *pieces) buffers.emplace_back(c->data(), c->size());
    buffers.front() += std::exchange(out_offset_, 0);
    stream_.expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(options_.request_timeout_s * 1000)));
    asio::async_write(stream_, buffers,
                      [self = shared_from_this(), pieces](beast::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (ec) return self->Close();  // gone, or too slow to take a write
                        self->stream_.expires_never();
                        self->last_write_ = std::chrono::steady_clock::now();
                        self->Written();
                      });
  }

  // A streaming client sends nothing more; a read that ends means it hung up.
  void WatchForHangup() {
    stream_.socket().async_read_some(
        asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->Close();
          self->WatchForHangup();
        });
  }

  void ArmKeepalive() {
    if (!keepalive_) keepalive_.emplace(stream_.get_executor());
    keepalive_->expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(options_.keepalive_s * 1000)));
    keepalive_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      auto quiet = std::chrono::steady_clock::now() - self->last_write_;
      if (!self->writing_ && quiet >= std::chrono::milliseconds(static_cast<int64_t>(
                                          self->options_.keepalive_s * 1000 * 0.9))) {
        std::string keepalive = self->body_->Keepalive();
        if (!keepalive.empty()) {
          self->out_.push_back(std::make_shared<const std::string>(std::move(keepalive)));
        }
        self->Pump();
      }
      self->ArmKeepalive();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    body_.reset();  // ends its subscription
    if (keepalive_) keepalive_->cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const Router* router_;
  const HttpServerOptions& options_;
  BodyBudget* body_budget_;
  uint64_t reserved_ = 0;  // taken from the budget for the body being read
  bool head_ = false;
  bool keep_alive_ = false;  // the whole answer being sent leaves the connection open
  // Writing: whole answers, and streams
  static constexpr int kPumpTurns = 8;
  static constexpr size_t kMaxIov = 64;
  std::shared_ptr<WakeList> wakes_;
  std::shared_ptr<BodyStream> body_;
  std::vector<Chunk> out_;
  size_t out_offset_ = 0;  // bytes of out_.front() already sent
  bool writing_ = false;
  bool ended_ = false;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  std::optional<asio::steady_timer> keepalive_;
  std::array<char, 512> scratch_{};
};

void WakeList::Add(std::weak_ptr<Session> session) {
  std::lock_guard<std::mutex> lock(mu_);
  if (io_ == nullptr) return;
  ready_.push_back(std::move(session));
  if (ready_.size() == 1) asio::post(*io_, [this] { Run(); });
}

void WakeList::Run() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.swap(ready_);
  }
  for (auto& weak : running_) {
    if (auto session = weak.lock()) session->Pump();
  }
  running_.clear();
}

}  // namespace

// One I/O thread runs every handler: a connection's handlers never run at once, so they need
// no strand (a second thread did not lower SSE fan-out latency on 2 cores), and the wake list
// pumps streams directly.
struct HttpServer::Impl {
  HttpServerOptions options;
  const Router* router = nullptr;
  asio::io_context io{1};
  // Shared with the wake callbacks publishers hold, which may outlive the server.
  std::shared_ptr<WakeList> wakes = std::make_shared<WakeList>(&io);
  tcp::acceptor acceptor{io};
  std::thread thread;
  uint16_t port = 0;
  bool stopped = false;

  BodyBudget body_budget;
  asio::steady_timer accept_pause{io};
  int pause_ms = 0;  // the current back-off while out of descriptors (0: none)

  void Accept() {
    acceptor.async_accept(io, [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        pause_ms = 0;
        // Small answers and event frames go out at once, not after the peer's delayed ACK.
        beast::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(s), router, options, &body_budget, wakes)->Run();
      } else if (OutOfResources(ec)) {
        // At the descriptor limit accept() fails at once, again and again: retrying in a loop
        // spins a core and starves the connections already open. Pause instead, longer each
        // time (the pending connections wait in the listen backlog), and say so.
        pause_ms = std::clamp(pause_ms * 2, 50, 1000);
        spdlog::error("api: cannot accept connections: {}; pausing accepts for {} ms", ec.message(),
                      pause_ms);
        accept_pause.expires_after(std::chrono::milliseconds(pause_ms));
        accept_pause.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor.is_open()) Accept();
        });
        return;
      } else {
        spdlog::warn("api: accept failed: {}", ec.message());
      }
      if (acceptor.is_open()) Accept();
    });
  }

  static bool OutOfResources(const beast::error_code& ec) {
    int v = ec.value();
    return ec.category() == boost::system::system_category() &&
           (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM);
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      const Router* router) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->body_budget.set_limit(std::max<uint64_t>(options.max_body_memory, options.max_body_bytes));
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
    impl->accept_pause.cancel();
  });
  impl_->io.stop();
  impl_->thread.join();
  impl_->wakes->Close();
}

}  // namespace sluice::api
