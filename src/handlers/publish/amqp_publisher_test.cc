// AmqpPublisher's configuration: URLs, exchange, and a description that never holds the
// password. Publishing itself is tested against a real broker (tests/blackbox).
#include "handlers/publish/amqp_publisher.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(AmqpPublisherTest, DescribesTheTargetWithoutThePassword) {
  auto p = AmqpPublisher::Create({"amqp://pulse:hunter2@broker.example:5673/pulse", "", "ex", 5});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ((*p)->description(), "amqp://pulse@broker.example:5673/pulse exchange ex");
  auto q = AmqpPublisher::Create({"amqp://guest@localhost", "from-a-file", "ex", 5});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)->description(), "amqp://guest@localhost:5672/%2F exchange ex");
  EXPECT_EQ((*q)->description().find("from-a-file"), std::string::npos);
  auto tls = AmqpPublisher::Create({"amqps://pulse:pw@pulse.example/", "", "ex", 5});
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ((*tls)->description(), "amqps://pulse@pulse.example:5671/%2F exchange ex");
}

TEST(AmqpPublisherTest, RefusesWhatItCannotUse) {
  EXPECT_EQ(AmqpPublisher::Create({"amqp://h/", "", "", 5}).status().code(),
            Code::kInvalidArgument);  // no exchange
  EXPECT_EQ(AmqpPublisher::Create({"http://h/", "", "ex", 5}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(AmqpPublisher::Create({"amqp://[::1", "", "ex", 5}).status().code(),
            Code::kInvalidArgument);
}

TEST(AmqpPublisherTest, UnreachableBrokerIsUnavailableNotACrash) {
  auto p = AmqpPublisher::Create({"amqp://guest@127.0.0.1:1/", "", "ex", 2});
  ASSERT_TRUE(p.ok());
  size_t confirmed = 7;
  Status st = (*p)->Publish({{"k", "{}", "id"}}, &confirmed);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(confirmed, 0u);
  EXPECT_NE(st.message().find("cannot connect"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace sluice
