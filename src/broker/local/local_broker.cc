// LocalBroker implementation.
#include "broker/local/local_broker.h"

#include <algorithm>
#include <cstdlib>

#include "core/clock.h"

namespace sluice {

namespace {

uint64_t DeliveryNumber(const std::string& delivery) {
  return std::strtoull(delivery.c_str(), nullptr, 10);
}

}  // namespace

void LocalBroker::Push(const Ticket& pushed) {
  Ticket t = pushed;  // a new ticket, whatever hand-out it was copied from
  t.delivery.clear();
  t.deliveries = 0;
  t.dead = false;
  bool delayed;
  bool soonest = false;  // due before every other delayed ticket
  {
    std::lock_guard<std::mutex> lock(mu_);
    delayed = t.run_at > clock_->NowMicros();
    if (delayed) {
      soonest = delayed_.empty() || t.run_at < delayed_.top().run_at;
      delayed_.push(t);
    } else {
      ready_.push(t);
    }
  }
  // One ready ticket needs one worker (no thundering herd). A delayed ticket shortens the
  // waiters' sleep only when it is due first: otherwise they already wake before it is due,
  // and waking them all for each ticket scheduled later cost every such submission five
  // wake-ups and a fifth of its CPU.
  if (!delayed) {
    cv_.notify_one();
  } else if (soonest) {
    cv_.notify_all();
  }
}

void LocalBroker::PromoteDueLocked() {
  int64_t now = clock_->NowMicros();
  while (!delayed_.empty() && delayed_.top().run_at <= now) {
    ready_.push(delayed_.top());
    delayed_.pop();
  }
}

Ticket LocalBroker::HandOutLocked(Ticket t) {
  t.deliveries++;
  if (options_.lease_ms > 0) {
    if (t.delivery.empty()) t.delivery = std::to_string(next_delivery_++);
    leased_[DeliveryNumber(t.delivery)] = {t, clock_->MonotonicMicros() + options_.lease_ms * 1000};
  }
  return t;
}

std::optional<Ticket> LocalBroker::ReclaimLocked() {
  int64_t now = clock_->MonotonicMicros();
  for (auto it = leased_.begin(); it != leased_.end(); ++it) {
    if (it->second.deadline > now) continue;
    Ticket t = it->second.ticket;
    if (t.deliveries >= options_.max_deliveries) {
      leased_.erase(it);
      dead_++;
      t.dead = true;
      return t;
    }
    return HandOutLocked(t);
  }
  return std::nullopt;
}

std::optional<Ticket> LocalBroker::Pop(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    if (closed_) return std::nullopt;
    if (!leased_.empty()) {
      if (auto t = ReclaimLocked()) return t;
    }
    PromoteDueLocked();
    if (!ready_.empty()) {
      Ticket t = ready_.top();
      ready_.pop();
      return HandOutLocked(std::move(t));
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
    for (const auto& [n, lease] : leased_) {
      left_us = std::clamp<int64_t>(lease.deadline - clock_->MonotonicMicros(), 0, left_us);
    }
    auto until = now + std::chrono::microseconds(left_us);
    cv_.wait_until(lock, until);
  }
}

void LocalBroker::Ack(const Ticket& t) {
  if (options_.lease_ms <= 0 || t.delivery.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  leased_.erase(DeliveryNumber(t.delivery));
}

void LocalBroker::Extend(const Ticket& t) {
  if (options_.lease_ms <= 0 || t.delivery.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leased_.find(DeliveryNumber(t.delivery));
  if (it != leased_.end())
    it->second.deadline = clock_->MonotonicMicros() + options_.lease_ms * 1000;
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

size_t LocalBroker::PendingCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leased_.size();
}

size_t LocalBroker::DeadCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dead_;
}

}  // namespace sluice
