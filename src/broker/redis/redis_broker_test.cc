// RedisBroker beyond the conformance suite: URLs, several processes on one Redis, a paused
// holder, Redis losing its data, passwords. On the server `make test` starts
// (SLUICE_TEST_REDIS).
#include "broker/redis/redis_broker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "broker/redis/redis_conn.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

std::string Url() {
  const char* url = std::getenv("SLUICE_TEST_REDIS");
  return url == nullptr ? "" : url;
}

std::string FreshPrefix() {
  static std::atomic<int> n{0};
  return "r" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

RedisBrokerOptions Options(const std::string& prefix) {
  RedisBrokerOptions o;
  o.url = Url();
  o.prefix = prefix;
  o.shards = 4;
  o.lease_ms = 300;
  o.max_deliveries = 3;
  return o;
}

std::unique_ptr<RedisBroker> Open(const RedisBrokerOptions& o) {
  auto b = RedisBroker::Open(o, Clock::Real());
  EXPECT_TRUE(b.ok()) << b.status().ToString() << " (SLUICE_TEST_REDIS='" << Url()
                      << "': run the tests with `make test`, which starts Redis)";
  return b.ok() ? std::move(*b) : nullptr;
}

redis::Conn Admin() {
  auto e = redis::ParseUrl(Url());
  EXPECT_TRUE(e.ok());
  auto c = redis::Conn::Connect(*e, 5000);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : redis::Conn();
}

TEST(RedisUrlTest, TheFormsChrisAndArthurTake) {
  auto a = redis::ParseUrl("redis://:s3cret@queue.example:6380/2");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "queue.example");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  EXPECT_EQ(a->password, "s3cret");
  EXPECT_EQ(a->username, "");
  auto b = redis::ParseUrl("redis://worker:p%40ss@10.0.0.1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->username, "worker");
  EXPECT_EQ(b->password, "p@ss");
  EXPECT_EQ(b->port, 6379);
  auto c = redis::ParseUrl("unix:///run/redis/redis.sock?db=3&password=pw");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(c->db, 3);
  EXPECT_EQ(c->password, "pw");
  auto d = redis::ParseUrl("redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster/4");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->sentinels.size(), 3u);
  EXPECT_EQ(d->sentinels[1], std::make_pair(std::string("s2"), 26379));
  EXPECT_EQ(d->sentinels[2], std::make_pair(std::string("::1"), 26380));
  EXPECT_EQ(d->master_name, "mymaster");
  EXPECT_EQ(d->db, 4);
  auto v6 = redis::ParseUrl("redis://[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
}

TEST(RedisUrlTest, BadUrlsAreRefusedWithAReason) {
  for (const char* bad :
       {"queue.example:6379", "rediss://h:6379", "http://h", "redis://h:0", "redis://h:70000",
        "redis://h:port", "redis://h/x", "redis://:%zz@h", "unix://relative.sock",
        "redis+sentinel://s1:26379", "redis://h?bogus=1", "redis://"}) {
    auto e = redis::ParseUrl(bad);
    EXPECT_FALSE(e.ok()) << bad;
    if (!e.ok()) {
      EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << bad;
    }
  }
}

TEST(RedisUrlTest, DescriptionsNeverHoldAPassword) {
  for (const char* url :
       {"redis://:topsecret@h:1/2", "redis://u:topsecret@h", "unix:///s.sock?password=topsecret",
        "redis+sentinel://:topsecret@s1,s2/m"}) {
    auto e = redis::ParseUrl(url);
    ASSERT_TRUE(e.ok()) << url;
    EXPECT_EQ(redis::Describe(*e).find("topsecret"), std::string::npos) << url;
  }
}

TEST(RedisBrokerTest, ShardsAreAStableHashOfTheJobId) {
  // Every process and every release must agree: these values may never change.
  std::vector<int> counts(8);
  for (int64_t id = 1; id <= 8000; ++id) counts[RedisBroker::ShardOf(id, 8)]++;
  for (int c : counts) {
    EXPECT_GT(c, 800);
    EXPECT_LT(c, 1200);
  }
  EXPECT_EQ(RedisBroker::ShardOf(1, 8), 1);
  EXPECT_EQ(RedisBroker::ShardOf(12345, 8), 0);
  EXPECT_EQ(RedisBroker::ShardOf(12345, 1), 0);
}

TEST(RedisBrokerTest, ADifferentShardCountIsRefused) {
  auto o = Options(FreshPrefix());
  auto a = Open(o);
  ASSERT_NE(a, nullptr);
  o.shards = 16;
  auto b = RedisBroker::Open(o, Clock::Real());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(b.status().message().find("4 shards"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("--shards 16"), std::string::npos);
}

TEST(RedisBrokerTest, OneProcessPushesAnotherPops) {
  std::string prefix = FreshPrefix();
  auto a = Open(Options(prefix));
  auto b = Open(Options(prefix));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a->Push({7, 0, 0, 0, "git"});
  auto t = b->Pop(milliseconds(2000));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->job_id, 7);
  EXPECT_EQ(t->queue, "git");
  b->Ack(*t);
  EXPECT_EQ(a->PendingCount(), 0u);
}

TEST(RedisBrokerTest, AnyQueueNameSurvivesADelay) {
  // Queue names are any UTF-8 without control characters: '|', ':', '/' and spaces too.
  std::string prefix = FreshPrefix();
  auto b = Open(Options(prefix));
  ASSERT_NE(b, nullptr);
  const std::string queues[] = {"a|b", "x:y/kcidb", "with space|and|bars/exec", "é☃"};
  int64_t due = Clock::Real()->NowMicros() + 200'000;
  int64_t id = 100;
  for (const std::string& q : queues) b->Push({++id, 0, 0, due, q});
  EXPECT_EQ(b->DelayedCount(), 4u);
  std::map<int64_t, std::string> got;
  for (int i = 0; i < 4; ++i) {
    auto t = b->Pop(milliseconds(3000));
    ASSERT_TRUE(t.has_value());
    got[t->job_id] = t->queue;
    b->Ack(*t);
  }
  EXPECT_EQ(got, (std::map<int64_t, std::string>{
                     {101, queues[0]}, {102, queues[1]}, {103, queues[2]}, {104, queues[3]}}));
}

TEST(RedisBrokerTest, APausedHolderCannotTakeBackOrAcknowledgeWhatWasTakenOver) {
  std::string prefix = FreshPrefix();
  auto a = Open(Options(prefix));
  auto b = Open(Options(prefix));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a->Push({8, 0, 0, 0});
  auto held = a->Pop(milliseconds(2000));
  ASSERT_TRUE(held.has_value());
  // a stalls past its lease; b takes the entry over.
  auto taken = b->Pop(milliseconds(2000));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->job_id, 8);
  EXPECT_EQ(taken->deliveries, 2);
  // a wakes up: its Extend and Ack change nothing; b still holds the entry.
  a->Extend(*held);
  a->Ack(*held);
  EXPECT_EQ(b->PendingCount(), 1u);
  b->Ack(*taken);
  EXPECT_EQ(b->PendingCount(), 0u);
}

TEST(RedisBrokerTest, AConsumerThatDiedLeavesItsEntriesToTheOthers) {
  std::string prefix = FreshPrefix();
  auto b = Open(Options(prefix));
  ASSERT_NE(b, nullptr);
  {
    auto a = Open(Options(prefix));
    ASSERT_NE(a, nullptr);
    for (int i = 1; i <= 20; ++i) a->Push({100 + i, 0, i, 0});
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(a->Pop(milliseconds(2000)).has_value());
    a->Close();  // gone without acknowledging anything
  }
  std::set<int64_t> seen;
  int redelivered = 0;
  while (auto t = b->Pop(milliseconds(1500))) {
    seen.insert(t->job_id);
    redelivered += t->deliveries > 1;
    b->Ack(*t);
  }
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_GE(redelivered, 5);  // the five a held, and what it had read ahead
  EXPECT_EQ(b->PendingCount(), 0u);
  EXPECT_GE(b->counters().reclaims, 5u);
}

TEST(RedisBrokerTest, RedisLosingItsDataIsSurvived) {
  std::string prefix = FreshPrefix();
  auto b = Open(Options(prefix));
  ASSERT_NE(b, nullptr);
  b->Push({9, 0, 0, 0});
  auto t = b->Pop(milliseconds(2000));
  ASSERT_TRUE(t.has_value());
  b->Ack(*t);
  // As after a restart with no data: every key of this prefix gone, groups included.
  redis::Conn admin = Admin();
  auto keys = admin.Command({"KEYS", prefix + ":*"});
  ASSERT_TRUE(keys.ok());
  for (const auto& k : keys->elements) ASSERT_TRUE(admin.Command({"DEL", k.str}).ok());
  b->Push({10, 0, 0, 0});
  auto again = b->Pop(milliseconds(3000));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->job_id, 10);
  b->Ack(*again);
}

TEST(RedisBrokerTest, AclUsersAndWrongPasswords) {
  redis::Conn admin = Admin();
  std::string user = "sluice-test-" + std::to_string(getpid());
  ASSERT_TRUE(admin.Command({"ACL", "SETUSER", user, "on", ">right-pw-91", "~*", "+@all"}).ok());
  auto e = redis::ParseUrl(Url());
  ASSERT_TRUE(e.ok());
  std::string hostport = e->host + ":" + std::to_string(e->port);
  auto o = Options(FreshPrefix());
  o.url = "redis://" + user + ":wrong-pw-42@" + hostport;
  auto bad = RedisBroker::Open(o, Clock::Real());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("wrong-pw-42"), std::string::npos);
  EXPECT_NE(bad.status().message().find("WRONGPASS"), std::string::npos) << bad.status().message();
  o.url = "redis://" + user + ":right-pw-91@" + hostport;
  auto good = Open(o);
  ASSERT_NE(good, nullptr);
  good->Push({5, 0, 0, 0});
  auto t = good->Pop(milliseconds(2000));
  ASSERT_TRUE(t.has_value());
  good->Ack(*t);
  (void)admin.Command({"ACL", "DELUSER", user});
}

TEST(RedisBrokerTest, AnUnreachableRedisIsAClearErrorAtOpen) {
  auto o = Options(FreshPrefix());
  o.url = "redis://127.0.0.1:1";
  o.timeout_ms = 1000;
  auto b = RedisBroker::Open(o, Clock::Real());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kUnavailable);
  EXPECT_NE(b.status().message().find("host 127.0.0.1 port 1"), std::string::npos)
      << b.status().message();
}

}  // namespace
}  // namespace sluice
