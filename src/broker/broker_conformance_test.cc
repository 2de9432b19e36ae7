// The Broker conformance suite: every case runs against the local broker and the Redis
// broker (on the server `make test` starts: SLUICE_TEST_REDIS; no server is a failure).
// Real clocks and short leases: Redis measures idle time itself.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "broker/local/local_broker.h"
#include "broker/redis/redis_broker.h"
#include "broker/redis/redis_conn.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

constexpr int kLeaseMs = 300;
constexpr int kMaxDeliveries = 3;
// How long a test waits for a ticket that must come: long, so that a loaded machine (the
// sanitizer build beside the black-box tests) cannot make it fail; it returns once it came.
constexpr int kPatienceMs = 10'000;

std::string RedisUrl() {
  const char* url = std::getenv("SLUICE_TEST_REDIS");
  return url == nullptr ? "" : url;
}

// A key prefix no other test uses on the shared server.
std::string FreshPrefix() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(getpid()) + "-" + std::to_string(n++) + "-" +
         ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

struct Backend {
  std::string name;
  // A broker on shared state named `prefix` (the same prefix: the same queues).
  std::function<Result<std::unique_ptr<Broker>>(const std::string& prefix)> open;
};

Result<std::unique_ptr<Broker>> OpenRedis(const std::string& prefix) {
  if (RedisUrl().empty()) {
    return Status::FailedPrecondition(
        "SLUICE_TEST_REDIS is not set: run the tests with `make test`, which starts Redis");
  }
  RedisBrokerOptions o;
  o.url = RedisUrl();
  o.prefix = prefix;
  o.shards = 4;
  o.lease_ms = kLeaseMs;
  o.max_deliveries = kMaxDeliveries;
  auto b = RedisBroker::Open(o, Clock::Real());
  if (!b.ok()) return b.status();
  return std::unique_ptr<Broker>(std::move(*b));
}

Result<std::unique_ptr<Broker>> OpenLocal(const std::string&) {
  BrokerOptions o;
  o.lease_ms = kLeaseMs;
  o.max_deliveries = kMaxDeliveries;
  return std::unique_ptr<Broker>(std::make_unique<LocalBroker>(Clock::Real(), o));
}

class BrokerConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    prefix_ = FreshPrefix();
    auto b = GetParam().open(prefix_);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(*b);
  }
  void TearDown() override {
    if (broker_) broker_->Close();
  }
  int64_t Now() const { return Clock::Real()->NowMicros(); }

  std::string prefix_;
  std::unique_ptr<Broker> broker_;
};

// Across shards there is no one order in Redis; among equals, no order is promised here.
TEST_P(BrokerConformance, HigherPriorityFirst) {
  broker_->Push({11, 0, 100, 0});
  broker_->Push({12, 0, 200, 0});
  broker_->Push({13, 5, 300, 0});
  broker_->Push({14, 0, 400, 0});
  std::vector<int64_t> order;
  while (auto t = broker_->Pop(milliseconds(300))) {
    order.push_back(t->job_id);
    EXPECT_EQ(t->deliveries, 1);
    EXPECT_FALSE(t->dead);
    broker_->Ack(*t);
  }
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[0], 13);
  EXPECT_EQ(std::set<int64_t>(order.begin() + 1, order.end()), (std::set<int64_t>{11, 12, 14}));
}

TEST_P(BrokerConformance, ADelayedTicketIsNotHandedOutBeforeItsTime) {
  broker_->Push({21, 0, 0, Now() + 400'000});
  EXPECT_EQ(broker_->DelayedCount(), 1u);
  auto t0 = Steady::now();
  EXPECT_FALSE(broker_->Pop(milliseconds(150)).has_value());
  auto t = broker_->Pop(milliseconds(2000));
  double waited = std::chrono::duration<double>(Steady::now() - t0).count();
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->job_id, 21);
  EXPECT_GE(waited, 0.39);
  EXPECT_LT(waited, 1.5);  // woken near its time, not at the end of the wait
  EXPECT_EQ(broker_->DelayedCount(), 0u);
  broker_->Ack(*t);
}

TEST_P(BrokerConformance, CloseWakesWaitersAndRefusesFurtherPops) {
  auto t0 = Steady::now();
  std::thread waiter([&] { EXPECT_FALSE(broker_->Pop(milliseconds(60'000)).has_value()); });
  std::this_thread::sleep_for(milliseconds(50));
  broker_->Close();
  waiter.join();
  EXPECT_LT(std::chrono::duration<double>(Steady::now() - t0).count(), 2.0);
  broker_->Push({31, 0, 0, 0});
  EXPECT_FALSE(broker_->Pop(milliseconds(0)).has_value());
}

TEST_P(BrokerConformance, AnAcknowledgedTicketIsNeverHandedOutAgain) {
  broker_->Push({41, 0, 0, 0});
  auto t = broker_->Pop(milliseconds(1000));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(broker_->PendingCount(), 1u);
  broker_->Ack(*t);
  EXPECT_EQ(broker_->PendingCount(), 0u);
  EXPECT_FALSE(broker_->Pop(milliseconds(kLeaseMs * 3)).has_value());
}

TEST_P(BrokerConformance, ATicketWhoseLeaseLapsesIsHandedOutAgainCounted) {
  broker_->Push({51, 0, 0, 0});
  auto first = broker_->Pop(milliseconds(1000));
  ASSERT_TRUE(first.has_value());
  // Its holder goes silent: no Ack, no Extend.
  auto t0 = Steady::now();
  auto again = broker_->Pop(milliseconds(kPatienceMs));
  ASSERT_TRUE(again.has_value());
  EXPECT_GE(std::chrono::duration<double>(Steady::now() - t0).count(), kLeaseMs / 1000.0 * 0.9);
  EXPECT_EQ(again->job_id, 51);
  EXPECT_EQ(again->deliveries, 2);
  EXPECT_FALSE(again->dead);
  broker_->Ack(*again);
  EXPECT_FALSE(broker_->Pop(milliseconds(kLeaseMs * 2)).has_value());
}

TEST_P(BrokerConformance, ExtendingKeepsTheTicket) {
  broker_->Push({61, 0, 0, 0});
  auto held = broker_->Pop(milliseconds(1000));
  ASSERT_TRUE(held.has_value());
  std::atomic<bool> done{false};
  std::thread beat([&] {
    while (!done) {
      broker_->Extend(*held);
      std::this_thread::sleep_for(milliseconds(kLeaseMs / 4));
    }
  });
  EXPECT_FALSE(broker_->Pop(milliseconds(kLeaseMs * 4)).has_value());
  done = true;
  beat.join();
  broker_->Ack(*held);
}

TEST_P(BrokerConformance, AfterMaxDeliveriesATicketIsADeadLetterOnce) {
  broker_->Push({71, 0, 0, 0});
  for (int i = 1; i <= kMaxDeliveries; ++i) {
    auto t = broker_->Pop(milliseconds(kPatienceMs));
    ASSERT_TRUE(t.has_value()) << "hand-out " << i;
    EXPECT_EQ(t->deliveries, i);
    EXPECT_FALSE(t->dead);
  }
  auto dead = broker_->Pop(milliseconds(kPatienceMs));
  ASSERT_TRUE(dead.has_value());
  EXPECT_EQ(dead->job_id, 71);
  EXPECT_TRUE(dead->dead);
  EXPECT_EQ(dead->deliveries, kMaxDeliveries);
  broker_->Ack(*dead);
  EXPECT_EQ(broker_->DeadCount(), 1u);
  EXPECT_EQ(broker_->PendingCount(), 0u);
  EXPECT_FALSE(broker_->Pop(milliseconds(kLeaseMs * 3)).has_value());
}

TEST_P(BrokerConformance, ManyConsumersTakeEachTicketOnce) {
  constexpr int kTickets = 2000;
  for (int i = 1; i <= kTickets; ++i) broker_->Push({1000 + i, i % 7 == 0 ? 1 : 0, i, 0});
  std::mutex mu;
  std::multiset<int64_t> seen;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto t = broker_->Pop(milliseconds(500))) {
        broker_->Ack(*t);
        std::lock_guard<std::mutex> lock(mu);
        seen.insert(t->job_id);
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kTickets));
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), static_cast<size_t>(kTickets));
  EXPECT_EQ(broker_->ReadyCount(), 0u);
  EXPECT_EQ(broker_->PendingCount(), 0u);
}

TEST_P(BrokerConformance, CountsSayWhereTicketsAre) {
  broker_->Push({81, 0, 0, 0});
  broker_->Push({82, 0, 0, 0});
  broker_->Push({83, 0, 0, Now() + 60'000'000});
  EXPECT_EQ(broker_->ReadyCount(), 2u);
  EXPECT_EQ(broker_->DelayedCount(), 1u);
  auto t = broker_->Pop(milliseconds(1000));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(broker_->PendingCount(), 1u);
  EXPECT_EQ(broker_->ReadyCount() + broker_->PendingCount(), 2u);
  broker_->Ack(*t);
  EXPECT_EQ(broker_->DeadCount(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Brokers, BrokerConformance,
                         ::testing::Values(Backend{"local", OpenLocal},
                                           Backend{"redis", OpenRedis}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace sluice
