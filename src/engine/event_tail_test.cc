// EventTail with a fan-out: events that come out of order go out in id order, and one whose
// publication was lost is read from the store; each once.
#include "engine/event_tail.h"

#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <thread>

#include "core/test_util.h"

namespace sluice {
namespace {

// A wire whose deliveries the test scripts (the real one is Redis: test_cluster.py).
class ScriptedFanOut : public EventFanOut {
 public:
  void PublishEvents(const std::vector<Event>&) override {}
  Result<std::vector<Event>> ReadEvents(int block_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (batches_.empty()) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(block_ms, 20)));
      return std::vector<Event>();
    }
    std::vector<Event> next = std::move(batches_.front());
    batches_.pop_front();
    return next;
  }
  void Send(std::vector<Event> batch) {
    std::lock_guard<std::mutex> lock(mu_);
    batches_.push_back(std::move(batch));
  }

 private:
  std::mutex mu_;
  std::deque<std::vector<Event>> batches_;
};

class EventTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore("sqlite:" + dir_.Sub("db.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  // Registers `n` jobs; their state events, with the ids the store gave them.
  std::vector<Event> Commit(int n) {
    WriteBatch b;
    for (int i = 0; i < n; ++i) {
      Job j;
      j.id = ++next_;
      j.kind = "exec";
      j.created_at = 1;
      b.new_jobs.push_back(j);
    }
    EXPECT_TRUE(store_->Write(&b).ok());
    return b.appended;
  }
  // What the hub handed on, once `n` have come (or 5 s passed).
  std::vector<int64_t> Received(EventHub::Subscription* sub, size_t n) {
    std::vector<int64_t> ids;
    for (int i = 0; i < 250 && ids.size() < n; ++i) {
      bool lagged = false;
      for (const auto& e : sub->Take(&lagged)) ids.push_back(e->id);
      if (ids.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ids;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  int64_t next_ = 0;
};

TEST_F(EventTailTest, OutOfOrderArrivalsGoOutInIdOrder) {
  EventHub hub;
  ScriptedFanOut wire;
  EventTail tail(store_.get(), &hub, &wire);
  ASSERT_TRUE(tail.Start().ok());
  auto sub = hub.Subscribe(EventFilter{}, 100, [] {});
  std::vector<Event> e = Commit(4);
  // Two processes' publications crossing: 3 and 4 come before 1 and 2.
  wire.Send({e[2], e[3]});
  wire.Send({e[0]});
  wire.Send({e[1], e[2]});  // 3 again: a duplicate is dropped
  EXPECT_EQ(Received(sub.get(), 4), (std::vector<int64_t>{e[0].id, e[1].id, e[2].id, e[3].id}));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bool lagged = false;
  EXPECT_TRUE(sub->Take(&lagged).empty());
  tail.Stop();
}

TEST_F(EventTailTest, AnEventWhosePublicationWasLostIsReadFromTheStore) {
  EventHub hub;
  ScriptedFanOut wire;
  EventTail tail(store_.get(), &hub, &wire);
  ASSERT_TRUE(tail.Start().ok());
  auto sub = hub.Subscribe(EventFilter{}, 100, [] {});
  std::vector<Event> e = Commit(3);
  wire.Send({e[0], e[2]});  // e[1]'s process died between its commit and its publish
  EXPECT_EQ(Received(sub.get(), 3), (std::vector<int64_t>{e[0].id, e[1].id, e[2].id}));
  // And a lost event with nothing after it: the store, within a second or so.
  std::vector<Event> last = Commit(1);
  EXPECT_EQ(Received(sub.get(), 1), (std::vector<int64_t>{last[0].id}));
  wire.Send({last[0]});  // its publication, late: not handed on twice
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bool lagged = false;
  EXPECT_TRUE(sub->Take(&lagged).empty());
  tail.Stop();
}

}  // namespace
}  // namespace sluice
