// The sse phase's readers (FrameReaders), and the machine's floor under that phase
// (MeasureFanoutFloor): no HTTP, no store, no Sluice. A
// forked process accepts C loopback TCP connections (TCP_NODELAY, as the server's) and, on
// one thread, sends each connection every frame due since its last send (one event every
// 20 ms, like the phase's 50 POSTs/s) in one non-blocking send: what Sluice's fan-out does,
// with nothing else. The reader is the sse phase's: one epoll thread, reading each ready
// connection until it is empty.
// Latency is from an event's due time to its frame being read.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace sluice::bench {

struct FanoutFloor {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  size_t frames = 0;
};

// Event-stream connections read by one epoll thread, each ready one until it is empty; a
// frame counts when it carries a `data: {"job":N` line.
class FrameReaders {
 public:
  using Steady = std::chrono::steady_clock;
  FrameReaders() : ep_(epoll_create1(0)) {}
  ~FrameReaders() {
    for (int fd : fds_) close(fd);
    close(ep_);
  }
  FrameReaders(const FrameReaders&) = delete;
  FrameReaders& operator=(const FrameReaders&) = delete;

  // Takes a connected socket (and closes it in the end).
  void Add(int fd) {
    fcntl(fd, F_SETFL, O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    fds_.push_back(fd);
    if (bufs_.size() <= static_cast<size_t>(fd)) bufs_.resize(static_cast<size_t>(fd) + 1);
  }
  size_t size() const { return fds_.size(); }

  // Until `expected` frames came or the deadline: each frame's N and when it was read.
  std::vector<std::pair<int64_t, Steady::time_point>> Read(size_t expected,
                                                           Steady::time_point deadline) {
    std::vector<std::pair<int64_t, Steady::time_point>> seen;
    seen.reserve(expected);
    std::vector<epoll_event> ready(1024);
    constexpr std::string_view kData = "data: {\"job\":";
    while (seen.size() < expected && Steady::now() < deadline) {
      int n = epoll_wait(ep_, ready.data(), static_cast<int>(ready.size()), 100);
      auto now = Steady::now();
      for (int i = 0; i < n; ++i) {
        int fd = ready[i].data.fd;
        std::string& b = bufs_[static_cast<size_t>(fd)];
        char tmp[65536];
        ssize_t r;
        while ((r = read(fd, tmp, sizeof(tmp))) > 0) b.append(tmp, static_cast<size_t>(r));
        size_t pos;
        while ((pos = b.find("\n\n")) != std::string::npos) {
          size_t j = b.find(kData);
          if (j != std::string::npos && j < pos) {
            seen.emplace_back(std::atoll(b.c_str() + j + kData.size()), now);
          }
          b.erase(0, pos + 2);
        }
      }
    }
    return seen;
  }

 private:
  int ep_;
  std::vector<int> fds_;
  std::vector<std::string> bufs_;  // by descriptor
};

inline FanoutFloor MeasureFanoutFloor(int clients, int events) {
  using Steady = std::chrono::steady_clock;
  constexpr auto kEvery = std::chrono::milliseconds(20);
  FanoutFloor out;
  uint16_t port = 0;
  int ls = ListenLoopback(65535, &port);
  if (ls < 0) return out;
  int start_pipe[2];
  if (pipe(start_pipe) != 0) {
    close(ls);
    return out;
  }
  pid_t sender = fork();
  if (sender == 0) {
    std::vector<int> fds;
    for (int i = 0; i < clients; ++i) {
      int fd = accept(ls, nullptr, nullptr);
      if (fd < 0) _exit(1);
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      fds.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto start = Steady::now();
    int64_t start_ns = start.time_since_epoch().count();
    if (write(start_pipe[1], &start_ns, sizeof(start_ns)) != sizeof(start_ns)) _exit(1);
    std::vector<int> sent(fds.size(), 0);  // events each connection has
    // The frames, made before the clock starts (the server encodes each event once too).
    std::vector<std::string> frame(static_cast<size_t>(events));
    for (int e = 0; e < events; ++e) frame[e] = "data: {\"job\":" + std::to_string(e) + "}\n\n";
    auto due_now = [&] {
      return std::min<int>(events, static_cast<int>((Steady::now() - start) / kEvery) + 1);
    };
    std::string frames;
    for (int due = due_now();; due = due_now()) {
      // A sweep over every connection; each gets what is due when its turn comes, as a
      // stream pumped by the server takes everything published up to then.
      for (size_t i = 0; i < fds.size(); ++i) {
        if (i % 64 == 0) due = due_now();
        frames.clear();
        for (int e = sent[i]; e < due; ++e) frames += frame[e];
        sent[i] = due;
        if (!frames.empty()) {
          send(fds[i], frames.data(), frames.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
      }
      if (sent.front() == events && sent.back() == events) break;
      if (due_now() <= sent.front()) std::this_thread::sleep_until(start + kEvery * due);
    }
    std::this_thread::sleep_for(std::chrono::seconds(5));  // until the reader has it all
    _exit(0);
  }
  close(start_pipe[1]);
  FrameReaders readers;
  for (int i = 0; i < clients; ++i) {
    int fd = ConnectLoopback(port);
    if (fd < 0) break;
    readers.Add(fd);
  }
  int64_t start_ns = 0;
  if (read(start_pipe[0], &start_ns, sizeof(start_ns)) == sizeof(start_ns)) {
    Steady::time_point start{Steady::duration(start_ns)};
    auto seen = readers.Read(readers.size() * static_cast<size_t>(events),
                             Steady::now() + std::chrono::seconds(30) + kEvery * events);
    std::vector<double> lat;
    for (auto& [e, t] : seen) {
      lat.push_back(std::chrono::duration<double, std::milli>(t - (start + kEvery * e)).count());
    }
    out.frames = lat.size();
    out.p50_ms = Percentile(lat, 0.5);
    out.p99_ms = Percentile(lat, 0.99);
    out.max_ms = Percentile(lat, 1.0);
  }
  close(ls);
  close(start_pipe[0]);
  kill(sender, SIGKILL);
  int st = 0;
  waitpid(sender, &st, 0);
  return out;
}

}  // namespace sluice::bench
