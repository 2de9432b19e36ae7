// Ownership: which leases a process stops for when another takes them over, and which roles
// it only gives up (the outage case: the first process back takes over the roles of those
// not back yet).
#include "engine/ownership.h"

#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/test_util.h"

namespace sluice {
namespace {

class OwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore("sqlite:" + dir_.Sub("db.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  // `a` held everything; the database was away longer than the lease; `b` came back first.
  void OutageWhereBComesBackFirst(Ownership* a, Ownership* b, const std::string& name) {
    ASSERT_TRUE(a->TryTake(name));
    ASSERT_FALSE(b->TryTake(name));  // stands by
    clock_.Advance(3'000'000);       // past the 2 s lease, nothing renewed
    ASSERT_TRUE(b->TryTake(name));
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  ManualClock clock_;
};

TEST_F(OwnershipTest, ARoleTakenOverIsGivenUpAndStoodByForAgain) {
  for (const char* role : {Ownership::kPrunerLease, Ownership::kReconcilerLease}) {
    Ownership a(store_.get(), &clock_, std::string("a-") + role, 2);
    Ownership b(store_.get(), &clock_, std::string("b-") + role, 2);
    OutageWhereBComesBackFirst(&a, &b, role);
    Status st = a.Renew();
    EXPECT_TRUE(st.ok()) << role << ": " << st.ToString();
    EXPECT_FALSE(a.Holds(role));
    EXPECT_TRUE(b.Holds(role));
    EXPECT_FALSE(a.TryTake(role));  // b holds it now
    // b stops: a takes it when b's lease ends.
    clock_.Advance(3'000'000);
    EXPECT_TRUE(a.TryTake(role));
  }
}

TEST_F(OwnershipTest, AFencingLeaseTakenOverStopsTheProcess) {
  Ownership a(store_.get(), &clock_, "a", 2);
  Ownership b(store_.get(), &clock_, "b", 2);
  OutageWhereBComesBackFirst(&a, &b, Ownership::SpoolLease("/spool"));
  Status st = a.Renew();
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
}

}  // namespace
}  // namespace sluice
