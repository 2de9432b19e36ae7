// ReadBudget: a first-come, first-served byte budget for the files being read.
#include "engine/read_budget.h"

#include <algorithm>
#include <chrono>

namespace sluice {

ReadBudget::Grant& ReadBudget::Grant::operator=(Grant&& o) noexcept {
  if (this != &o) {
    Release();
    budget_ = o.budget_;
    bytes_ = o.bytes_;
    o.budget_ = nullptr;
  }
  return *this;
}

void ReadBudget::Grant::Release() {
  if (budget_ != nullptr) budget_->Give(bytes_);
  budget_ = nullptr;
}

ReadBudget::Grant ReadBudget::Take(uint64_t bytes, const std::atomic<bool>& stop, bool* taken) {
  bytes = std::min(bytes, total_);
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t ticket = next_ticket_++;
  waiting_.push_back(ticket);
  while (!(waiting_.front() == ticket && free_ >= bytes)) {
    if (stop) {
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
      cv_.notify_all();  // the next one may be first now
      *taken = false;
      return Grant();
    }
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  waiting_.pop_front();
  free_ -= bytes;
  cv_.notify_all();  // the next in line may fit too
  *taken = true;
  return Grant(this, bytes);
}

void ReadBudget::Give(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  free_ += bytes;
  cv_.notify_all();
}

uint64_t ReadBudget::Held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_ - free_;
}

size_t ReadBudget::Waiters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size();
}

}  // namespace sluice
