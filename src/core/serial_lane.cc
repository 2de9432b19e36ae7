// SerialLane: one thread, calls in order, a bound on the waiting ones.
#include "core/serial_lane.h"

namespace sluice {

SerialLane::~SerialLane() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool SerialLane::Post(std::function<void()>& call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || calls_.size() >= max_waiting_) return false;
    calls_.push_back(std::move(call));
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  cv_.notify_one();
  return true;
}

void SerialLane::Run() {
  std::unique_lock<std::mutex> held(mu_);
  while (true) {
    cv_.wait(held, [&] { return stop_ || !calls_.empty(); });
    if (calls_.empty()) return;  // stopping, every call run
    std::function<void()> call = std::move(calls_.front());
    calls_.pop_front();
    held.unlock();
    call();
    held.lock();
  }
}

}  // namespace sluice
