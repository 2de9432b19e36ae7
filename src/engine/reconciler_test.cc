// Reconciler: waiting HTTP jobs the broker lost are published again; nothing else is.
#include "engine/reconciler.h"

#include <gtest/gtest.h>

#include <thread>

#include "broker/local/local_broker.h"
#include "core/test_util.h"

namespace sluice {
namespace {

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore("sqlite:" + dir_.Sub("db.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  // A job in `state`; an HTTP job unless `spool` is given.
  int64_t Add(JobState state, const std::string& kind = "exec", const std::string& spool = "",
              int64_t lease_until = 0) {
    Job j;
    j.id = ++next_;
    j.kind = kind;
    j.queue = "q";
    j.spool = spool;
    j.name = spool.empty() ? "" : "f" + std::to_string(j.id) + ".json";
    j.payload = spool.empty() ? "[\"/bin/true\"]" : "";
    j.created_at = Clock::Real()->NowMicros();
    WriteBatch b;
    b.new_jobs.push_back(j);
    EXPECT_TRUE(store_->Write(&b).ok());
    if (state != JobState::kQueued) {
      JobUpdate u = UpdateOf(j);
      u.state = state;
      if (state == JobState::kRetrying) u.run_at = Clock::Real()->NowMicros() + 60'000'000;
      WriteBatch c;
      c.updates.push_back(u);
      EXPECT_TRUE(store_->Write(&c).ok());
    }
    if (lease_until != 0) {
      int64_t now = Clock::Real()->NowMicros();
      auto claimed = store_->ClaimJobs({j.id}, "someone", lease_until, now);
      EXPECT_TRUE(claimed.ok() && claimed->size() == 1);
    }
    return j.id;
  }
  std::vector<Ticket> Drain(LocalBroker* broker) {
    std::vector<Ticket> out;
    while (auto t = broker->Pop(std::chrono::milliseconds(0))) out.push_back(*t);
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  int64_t next_ = 0;
};

TEST_F(ReconcilerTest, PublishesWaitingHttpJobsTheBrokerDoesNotHold) {
  int64_t queued = Add(JobState::kQueued);
  int64_t held = Add(JobState::kQueued);
  int64_t retrying = Add(JobState::kRetrying, "kcidb");
  Add(JobState::kSucceeded);
  Add(JobState::kFailed);
  Add(JobState::kQueued, "kcidb", "/srv/spool");  // a spool file: its engine's, not the broker's
  int64_t now = Clock::Real()->NowMicros();
  int64_t lapsed = Add(JobState::kQueued, "exec", "", now + 1);  // a dead worker's claim
  Add(JobState::kQueued, "exec", "", now + 60'000'000);          // a live claim
  LocalBroker broker(Clock::Real());
  Reconciler r(
      store_.get(), &broker, [&]() -> Result<std::set<int64_t>> { return std::set<int64_t>{held}; },
      Clock::Real());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto published = r.RunOnce();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(*published, 3u);
  std::vector<Ticket> ready = Drain(&broker);
  ASSERT_EQ(ready.size(), 2u);  // the retry is not due for a minute
  std::set<int64_t> ids = {ready[0].job_id, ready[1].job_id};
  EXPECT_EQ(ids, (std::set<int64_t>{queued, lapsed}));
  EXPECT_EQ(ready[0].queue, "q/exec");
  EXPECT_EQ(broker.DelayedCount(), 1u);
  (void)retrying;
}

TEST_F(ReconcilerTest, ABrokerThatCannotBeAskedPublishesNothing) {
  Add(JobState::kQueued);
  LocalBroker broker(Clock::Real());
  Reconciler r(
      store_.get(), &broker,
      []() -> Result<std::set<int64_t>> { return Status::Unavailable("Redis is away"); },
      Clock::Real());
  auto published = r.RunOnce();
  EXPECT_FALSE(published.ok());
  EXPECT_EQ(broker.ReadyCount(), 0u);
}

}  // namespace
}  // namespace sluice
