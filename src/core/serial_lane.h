// SerialLane: calls run one at a time, in the order they were posted, on a thread of the
// lane's own (started by the first call), with a bound on how many may wait.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace sluice {

class SerialLane {
 public:
  explicit SerialLane(size_t max_waiting) : max_waiting_(max_waiting) {}
  // Runs every call still waiting, then joins the thread.
  ~SerialLane();
  SerialLane(const SerialLane&) = delete;
  SerialLane& operator=(const SerialLane&) = delete;

  // Queues `call`. False, with `call` not taken (nor run), when max_waiting calls wait
  // already (the one running is not counted) or the lane is stopping.
  bool Post(std::function<void()>& call);

 private:
  void Run();

  const size_t max_waiting_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> calls_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice
