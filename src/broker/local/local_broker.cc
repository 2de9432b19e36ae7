// LocalBroker implementation.
#include "broker/local/local_broker.h"

#include <algorithm>

namespace sluice {

void LocalBroker::Push(const Ticket& t) {
  bool delayed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    delayed = t.run_at > clock_->NowMicros();
    if (delayed) {
      delayed_.push(t);
    } else {
      ready_.push(t);
    }
  }
  // One ready ticket needs one worker (no thundering herd); a delayed ticket may shorten
  // every waiter's sleep.
  if (delayed) {
    cv_.notify_all();
  } else {
    cv_.notify_one();
  }
}

void LocalBroker::PromoteDueLocked() {
  int64_t now = clock_->NowMicros();
  while (!delayed_.empty() && delayed_.top().run_at <= now) {
    ready_.push(delayed_.top());
    delayed_.pop();
  }
}

std::optional<Ticket> LocalBroker::Pop(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    if (closed_) return std::nullopt;
    PromoteDueLocked();
    if (!ready_.empty()) {
      Ticket t = ready_.top();
      ready_.pop();
      return t;
    }
    auto until = deadline;
    if (!delayed_.empty()) {
      auto due =
          std::chrono::steady_clock::now() + std::chrono::microseconds(std::max<int64_t>(
                                                 0, delayed_.top().run_at - clock_->NowMicros()));
      until = std::min(until, due);
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    cv_.wait_until(lock, until);
  }
}

void LocalBroker::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

size_t LocalBroker::ReadyCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.size();
}

size_t LocalBroker::DelayedCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_.size();
}

}  // namespace sluice
