// The submit phase's clients (RunSubmitClients), and the machine's floor under that phase
// (MeasureSubmitFloor): the same clients against a bare server in a forked process — one
// thread, level-triggered epoll, each complete request (head and Content-Length body)
// answered with a fixed 201 and a small JSON body. Nothing parsed beyond the length. Plain:
// answered at once, what the loopback round trips alone cost here. Durable: the bodies of
// the requests one epoll round brought are appended to a file and fdatasync'd once before
// their answers go out (the least a group commit can do).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace sluice::bench {

inline const std::string& SubmitBody() {
  static const std::string body = R"({"kind":"noop","payload":{"n":1}})";
  return body;
}

inline std::string PostRequest(const std::string& body = SubmitBody()) {
  return "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The length of the first complete HTTP message in `buf` (head and Content-Length body), or 0.
inline size_t CompleteMessage(const std::string& buf) {
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  size_t cl = buf.find("Content-Length: ");
  size_t len = cl < head_end ? std::strtoul(buf.c_str() + cl + 16, nullptr, 10) : 0;
  return buf.size() >= head_end + 4 + len ? head_end + 4 + len : 0;
}

// Reads one HTTP response from `fd` (buffer `buf` keeps what follows). Its status, or -1.
inline int ReadResponse(int fd, std::string* buf) {
  while (true) {
    if (size_t n = CompleteMessage(*buf)) {
      int status = std::atoi(buf->c_str() + 9);
      buf->erase(0, n);
      return status;
    }
    char tmp[16384];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0) return -1;
    buf->append(tmp, static_cast<size_t>(n));
  }
}

struct SubmitRun {
  std::vector<double> latencies_ms;
  double secs = 0;
  int errors = 0;
  double per_s() const { return secs > 0 ? latencies_ms.size() / secs : 0; }
};

// `n` POSTs of `body` from 2 threads with `conns` keep-alive connections each: a request on
// every connection, then every answer (201 expected), again and again.
inline SubmitRun RunSubmitClients(uint16_t port, int n, int conns,
                                  const std::string& body = SubmitBody()) {
  using Steady = std::chrono::steady_clock;
  const int kThreads = 2;
  SubmitRun run;
  std::atomic<int> errors{0};
  std::mutex mu;
  auto t0 = Steady::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<int> fds;
      std::vector<std::string> bufs(static_cast<size_t>(conns));
      for (int c = 0; c < conns; ++c) fds.push_back(ConnectLoopback(port));
      std::string req = PostRequest(body);
      std::vector<double> mine;
      for (int done = 0; done < n / kThreads; done += conns) {
        auto sent = Steady::now();
        for (int fd : fds) {
          if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) errors++;
        }
        for (int c = 0; c < conns; ++c) {
          if (ReadResponse(fds[c], &bufs[c]) != 201) errors++;
          mine.push_back(std::chrono::duration<double, std::milli>(Steady::now() - sent).count());
        }
      }
      for (int fd : fds) close(fd);
      std::lock_guard<std::mutex> lock(mu);
      run.latencies_ms.insert(run.latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  run.secs = std::chrono::duration<double>(Steady::now() - t0).count();
  run.errors = errors.load();
  return run;
}

// The bare server's side, in a child process until killed. `log` >= 0: durable answers.
[[noreturn]] inline void ServeBare(int listener, int log) {
  const std::string body = R"({"id":1,"state":"queued"})";
  const std::string answer =
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  std::vector<std::string> bufs;
  std::vector<epoll_event> ready(256);
  std::vector<std::pair<int, std::string>> answers;  // this round's, when durable
  std::string bodies;
  while (true) {
    int k = epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), -1);
    for (int i = 0; i < k; ++i) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
        if (c < 0) continue;
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        epoll_event cev{};
        cev.events = EPOLLIN;
        cev.data.fd = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        if (bufs.size() <= static_cast<size_t>(c)) bufs.resize(static_cast<size_t>(c) + 1);
        continue;
      }
      std::string& b = bufs[static_cast<size_t>(fd)];
      char tmp[16384];
      ssize_t r = read(fd, tmp, sizeof(tmp));
      if (r <= 0) {
        close(fd);
        b.clear();
        continue;
      }
      b.append(tmp, static_cast<size_t>(r));
      std::string out;
      while (size_t n = CompleteMessage(b)) {
        bodies.append(b, b.find("\r\n\r\n") + 4, n - b.find("\r\n\r\n") - 4);
        b.erase(0, n);
        out += answer;
      }
      if (out.empty()) continue;
      if (log < 0) {
        send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      } else {
        answers.emplace_back(fd, std::move(out));
      }
    }
    if (!answers.empty()) {
      if (write(log, bodies.data(), bodies.size()) < 0 || fdatasync(log) != 0) _exit(1);
      for (auto& [fd, out] : answers) send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      answers.clear();
    }
    bodies.clear();
  }
}

// `log_path` empty: plain answers; otherwise durable ones, through that file.
inline SubmitRun MeasureSubmitFloor(int n, int conns, const std::string& log_path) {
  SubmitRun failed;
  failed.errors = 1;
  uint16_t port = 0;
  int ls = ListenLoopback(4096, &port);
  if (ls < 0) return failed;
  int log = -1;
  if (!log_path.empty()) {
    log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log < 0) {
      close(ls);
      return failed;
    }
  }
  pid_t server = fork();
  if (server == 0) ServeBare(ls, log);
  close(ls);
  if (log >= 0) close(log);
  SubmitRun run = RunSubmitClients(port, n, conns);
  kill(server, SIGKILL);
  int st = 0;
  waitpid(server, &st, 0);
  if (!log_path.empty()) unlink(log_path.c_str());
  return run;
}

}  // namespace sluice::bench
