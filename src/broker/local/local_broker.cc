// LocalBroker implementation.
#include "broker/local/local_broker.h"

#include <algorithm>

#include "core/clock.h"

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
    // How long to sleep, computed in microseconds and capped by the caller's wait: a run_at
    // centuries away (or a stored one from before input was checked) must not overflow the
    // clock's nanoseconds into a deadline in the past, which would spin this loop.
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    int64_t left_us = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
    if (!delayed_.empty()) {
      int64_t due_us = SatAdd(delayed_.top().run_at, -clock_->NowMicros());
      left_us = std::clamp<int64_t>(due_us, 0, left_us);
    }
    auto until = now + std::chrono::microseconds(left_us);
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
